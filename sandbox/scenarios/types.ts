import type { Sandbox, SandboxOptions } from "../sandbox.js";
import type { ServiceDeployment } from "../service.js";
import type { CareFigures } from "./do-no-harm.js";
import type { HarmFigures, HarmRecords, StageScope } from "./harm-watch.js";
import type { Figures, Scope } from "./measure.js";

export interface ScenarioOptions {
  /** Instances per scaled group (each scenario has its default). */
  instances?: number;
  seed?: number | string;
  /** Real milliseconds per AWS millisecond. */
  clockScale?: number;
  /** CodeDeploy's wait for an absent agent: 300 (limits page) or 3600 (Auto Scaling troubleshooting page). */
  agentWaitSeconds?: number;
  /** Each progress line, as it happens. */
  onProgress?: (line: string) => void;
  /** Leave the sandbox running after the story ends (for --serve); the caller closes it. */
  keepOpen?: boolean;
  port?: number;
  /** Powertools log output of the handlers (default silent). */
  verbose?: boolean;
  /** Another DynamoDB implementation for the handlers (`SandboxOptions.dynamodbEndpoint`). */
  dynamodbEndpoint?: string;
}

/**
 * Real ms per AWS ms for a fleet of this size. The handlers, the SDK and the HTTP traffic run for
 * real, so a scale that saturates the CPU stretches AWS time under them and skews every latency; a
 * handler's 40-second timeout must also stay long in real time. Idle stretches are skipped
 * (sandbox/runtime/idle-skip.ts), so a slower clock costs the work's CPU time, not the story's length.
 */
export function defaultClockScale(_instances: number): number {
  return 0.2;
}

/** What every scenario's sandbox takes from the command line; scenarios add their own faults. */
export function baseSandboxOptions(options: ScenarioOptions, instances: number) {
  return {
    seed: options.seed ?? 1,
    clockScale: options.clockScale ?? defaultClockScale(instances),
    port: options.port,
    quiet: !options.verbose,
    world: { codeDeploy: { agentWaitSeconds: options.agentWaitSeconds } },
  } satisfies SandboxOptions;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioContext {
  sandbox: Sandbox;
  instances: number;
  options: ScenarioOptions;
  /** A line in the progress output (and the trace). */
  note(message: string): void;
  deploy(
    config: Parameters<Sandbox["deployService"]>[0],
    options?: Parameters<Sandbox["deployService"]>[1],
  ): Promise<ServiceDeployment>;
}

/** What the run watched for the do-no-harm rules, and how it judged it. */
export interface HarmContext {
  harm: HarmFigures;
  care: CareFigures;
  records: HarmRecords;
  stages: StageScope[];
}

export interface ScenarioPlay {
  scope: Scope;
  service: ServiceDeployment;
  /** Every stage the story deployed, when more than `service` (the harm figure covers them all). */
  services?: ServiceDeployment[];
  checks: (figures: Figures, harm: HarmContext) => Check[];
  /**
   * Figures of other parts of the world worth reporting (e.g. the group run without the service),
   * beside the summary's own figures: a key the summary already has would replace a figure the
   * checks, the printed summary and `--json` readers rely on, so none may be reused.
   */
  extra?: (harm: HarmContext) => ScenarioExtra;
}

export interface Scenario {
  name: string;
  title: string;
  defaultInstances: number;
  sandboxOptions(options: ScenarioOptions, instances: number): SandboxOptions;
  play(context: ScenarioContext): Promise<ScenarioPlay>;
}

/** What a scenario adds to the summary: any figure but the ones every run reports. */
export type ScenarioExtra = Record<string, unknown> & { [key in keyof SummaryFigures]?: never };

/** The figures every run reports, whatever the scenario. */
export type SummaryFigures = Omit<Figures, "lostInstances"> & {
  scenario: string;
  ok: boolean;
  seed: number | string;
  /** Instances launched in scope, replacements included (`instances` is the size asked for). */
  launched: number;
  awsSeconds: number;
  realSeconds: number;
  checks: Check[];
  lostInstances: Figures["lostInstances"];
  /** What the do-no-harm rules forbid, done by any stage deployed (0 when none). */
  harm: HarmFigures;
  /** How the stages kept to the do-no-harm rules (scopes, warm pools, other hooks, other teams). */
  care: CareFigures;
  throttledByOperation: Record<string, number>;
  faultsByOperation: Record<string, number>;
  /** Error answers by `Service.Operation:ErrorCode` (throttling and injected faults excluded). */
  apiErrors: Record<string, number>;
  /** The clock scale used and how late the event loop ran, in AWS seconds (timings are faithful when small). */
  timing: {
    clockScale: number;
    eventLoopDelayAwsSeconds: { p50: number; p99: number; max: number };
    faithful: boolean;
  };
  /**
   * Only when the handlers' DynamoDB was another implementation: its endpoint and the run's tables
   * there. Its calls are then missing from `apiCalls`, `throttled` and `faultsByOperation`.
   */
  externalDynamoDb?: { endpoint: string; tables: string[]; counted: false };
};

/** A run's summary: the figures every run reports and what its scenario adds (`ScenarioPlay.extra`). */
export type Summary = SummaryFigures & { [key: string]: unknown };
