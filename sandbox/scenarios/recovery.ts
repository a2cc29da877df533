import { COMMAND_INVOCATION_DETAIL_TYPE, LAUNCH_DETAIL_TYPE } from "../../functions/core/contract.js";
import { AGENT_NOT_RECEIVING_MESSAGE } from "../world/codedeploy/diagnostics.js";
import type { Deployment } from "../world/codedeploy/records.js";
import type { Instance } from "../world/instances.js";
import type { LifecycleAction } from "../world/lifecycle-action.js";
import type { TraceEntry } from "../world/trace.js";

/**
 * How fast the launch path gets a verified agent onto a new instance, how fast it recovers from each
 * fault the chaos run injects, and the CodeDeploy launch deployments it let fail that it could have
 * saved. Plain functions of the scope's instances, the trace and the launch deployments, so a
 * hand-made world can check them (tests/sandbox/recovery-figures.test.ts).
 */

/** Nearest-rank percentiles in AWS seconds; null when no instance counted. */
export interface TailPercentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

/**
 * One fault kind: the instances it hit while their launch was held, those that recovered, and the
 * AWS seconds from the fault (the first of its kind on the instance) to recovery. Recovered means the
 * service completed the instance's launch lifecycle action with CONTINUE and the instance ended in
 * service with a verified agent: the moment the service let the instance go is what a fleet owner
 * waits for, and the agent's verification alone would not do, as a dropped status event of the very
 * command that verified it comes after the verification. `p50` and `max` are null when none recovered.
 */
export interface FaultRecovery {
  hit: number;
  recovered: number;
  p50: number | null;
  max: number | null;
  /**
   * AWS seconds from the fault to the moment the service worked on the instance again: the start of
   * the next launch-function invocation that reported it, or the service's CONTINUE of it if that
   * came first (an invocation already running when the fault struck may complete the instance; the
   * next one to report it may come much later, or never). The stall the fault caused, without the
   * install that follows. Null when none resumed.
   */
  resumed: { p50: number | null; max: number | null };
}

export interface RecoveryFigures {
  /** Instances in service with a verified agent: from their launch (the service's lifecycle action start) to the first verification. */
  timeToVerifiedSeconds: TailPercentiles;
  /**
   * The same time less what the instance itself made the service wait for: its SSM registration, and
   * the agent installs that ran on it (each from its SendCommand to its end, failed ones included).
   * What is left is the service's own share: finding the instance, sending, reading, retrying.
   */
  serviceShareOfTimeToVerifiedSeconds: TailPercentiles;
  recoverySeconds: {
    /** The bus dropped the instance's launch lifecycle event or a Run Command status event of it. */
    droppedEvent: FaultRecovery;
    /** The Lambda runtime cut off an invocation that held the instance's event or message. */
    cutOffInvocation: FaultRecovery;
    /** An agent install failed there (the injected SSM failure); recovery needs a later install to succeed. */
    failedInstall: FaultRecovery;
  };
  /** Launch deployments failed for want of an agent on instances the service could have given one. */
  avoidableLaunchDeploymentFailures: number;
  avoidableLaunchDeploymentFailureInstances: AvoidableFailure[];
}

export interface AvoidableFailure {
  deploymentId: string;
  instanceId: string;
  /** AWS seconds from the instance's launch to the failure. */
  failedAfterSeconds: number;
}

export interface RecoveryInputs {
  /** The scope's instances (launched in the scope's groups during the run). */
  instances: readonly Instance[];
  /** The lifecycle actions of the service's hooks on an instance. */
  serviceActions(instanceId: string): readonly LifecycleAction[];
  /** In service with the agent running at the version that carries the fix, verified. */
  endedVerified(instance: Instance): boolean;
  trace: readonly TraceEntry[];
  /** CodeDeploy's launch deployments (creator `autoscaling`) in the scope's deployment groups. */
  launchDeployments: readonly Deployment[];
  /** When launch-function invocations that reported the instance started, in AWS ms (any order). */
  handledAt?(instanceId: string): readonly number[];
  /** The agent installs that ran on the instance: from request to end, in AWS ms. */
  installRuns?(instanceId: string): readonly { from: number; to: number }[];
}

/** The launch events whose loss the launch path must recover from (a sweep, a poll of the command). */
const LAUNCH_PATH_EVENTS = new Set<string>([LAUNCH_DETAIL_TYPE, COMMAND_INVOCATION_DETAIL_TYPE]);

export function recoveryFigures(inputs: RecoveryInputs): RecoveryFigures {
  const { instances, trace } = inputs;
  const inScope = new Map(instances.map((instance) => [instance.id, instance]));
  const faultsOf = (match: (entry: TraceEntry) => string[]) => {
    const first = new Map<string, number>();
    for (const entry of trace) {
      for (const id of match(entry)) if (inScope.has(id) && !first.has(id)) first.set(id, entry.at);
    }
    return first;
  };
  const dropped = faultsOf((entry) =>
    entry.kind === "event.dropped" &&
    entry.instanceId !== undefined &&
    LAUNCH_PATH_EVENTS.has(String(entry.data?.detailType))
      ? [entry.instanceId]
      : [],
  );
  const cutOff = faultsOf((entry) =>
    entry.kind === "lambda.cut-off" && Array.isArray(entry.data?.instanceIds)
      ? (entry.data.instanceIds as string[])
      : [],
  );
  const failedInstalls = faultsOf((entry) =>
    entry.kind === "install.failed" && entry.instanceId !== undefined ? [entry.instanceId] : [],
  );
  const recovery = (faults: Map<string, number>) => faultRecovery(inputs, inScope, faults);
  return {
    timeToVerifiedSeconds: timeToVerified(inputs),
    serviceShareOfTimeToVerifiedSeconds: serviceShare(inputs),
    recoverySeconds: {
      droppedEvent: recovery(dropped),
      cutOffInvocation: recovery(cutOff),
      failedInstall: recovery(failedInstalls),
    },
    ...avoidableFailures(inputs, inScope),
  };
}

/** When the service's launch action on the instance started (its launch, as the service sees it). */
function launchStart(inputs: RecoveryInputs, instance: Instance): number {
  const starts = inputs.serviceActions(instance.id).map((action) => action.startedAt);
  return starts.length > 0 ? Math.min(...starts) : (instance.milestones.pendingWait ?? instance.launchedAt);
}

/** When the service let the instance go with CONTINUE (undefined when it never did). */
function continuedAt(inputs: RecoveryInputs, instance: Instance): number | undefined {
  const continued = inputs
    .serviceActions(instance.id)
    .filter((action) => action.completed?.by === "api" && action.completed.result === "CONTINUE")
    .map((action) => action.completed!.at);
  return continued.length > 0 ? Math.min(...continued) : undefined;
}

/** A tail over the instances that end verified in service, of AWS ms from their launch to their first verification. */
function verifiedTail(
  inputs: RecoveryInputs,
  msOf: (instance: Instance, start: number, verifiedAt: number) => number,
): TailPercentiles {
  const seconds = inputs.instances
    .filter((instance) => inputs.endedVerified(instance) && instance.milestones.firstVerified !== undefined)
    .map((instance) => {
      const start = launchStart(inputs, instance);
      return Math.max(0, msOf(instance, start, instance.milestones.firstVerified!)) / 1000;
    });
  const [p50, p95, p99] = nearestRanks(seconds, [0.5, 0.95, 0.99]);
  return { p50: p50!, p95: p95!, p99: p99! };
}

function timeToVerified(inputs: RecoveryInputs): TailPercentiles {
  return verifiedTail(inputs, (_instance, start, verifiedAt) => verifiedAt - start);
}

function serviceShare(inputs: RecoveryInputs): TailPercentiles {
  return verifiedTail(inputs, (instance, start, verifiedAt) => {
    const registered = Math.min(verifiedAt, Math.max(start, instance.ssm.registeredAt ?? start));
    const waits = [
      { from: start, to: registered },
      ...(inputs.installRuns?.(instance.id) ?? []).map((run) => ({
        from: Math.max(start, run.from),
        to: Math.min(verifiedAt, run.to),
      })),
    ];
    return verifiedAt - start - coveredMs(waits);
  });
}

/** How much of the time line the spans cover together (overlaps counted once). */
function coveredMs(spans: readonly { from: number; to: number }[]): number {
  let covered = 0;
  let reached = Number.NEGATIVE_INFINITY;
  for (const span of [...spans].filter((item) => item.to > item.from).sort((a, b) => a.from - b.from)) {
    covered += Math.max(0, span.to - Math.max(span.from, reached));
    reached = Math.max(reached, span.to);
  }
  return covered;
}

function faultRecovery(
  inputs: RecoveryInputs,
  inScope: ReadonlyMap<string, Instance>,
  faults: ReadonlyMap<string, number>,
): FaultRecovery {
  let hit = 0;
  const seconds: number[] = [];
  const resumed: number[] = [];
  for (const [instanceId, faultAt] of faults) {
    const instance = inScope.get(instanceId)!;
    const released = continuedAt(inputs, instance);
    // A fault after the service let the instance go (an upgrade's command later on) is no launch fault.
    if (released !== undefined && faultAt > released) continue;
    hit++;
    if (released !== undefined && inputs.endedVerified(instance)) seconds.push((released - faultAt) / 1000);
    const next = [
      ...(inputs.handledAt?.(instanceId) ?? []),
      ...(released === undefined ? [] : [released]),
    ].filter((at) => at > faultAt);
    if (next.length > 0) resumed.push((Math.min(...next) - faultAt) / 1000);
  }
  const [p50] = nearestRanks(seconds, [0.5]);
  const [resumedP50] = nearestRanks(resumed, [0.5]);
  return {
    hit,
    recovered: seconds.length,
    p50: p50!,
    max: seconds.length > 0 ? round(Math.max(...seconds)) : null,
    resumed: { p50: resumedP50!, max: resumed.length > 0 ? round(Math.max(...resumed)) : null },
  };
}

/**
 * Launch deployments that failed because no agent picked a lifecycle event up in time, on an instance
 * the service could have given a running agent before then: it had registered with SSM before the
 * failure, was not already going away (abandoned, or terminating: a Spot interruption, the chaos
 * monkey, a scale-in; the failure then follows from the termination), and its install could succeed
 * (no install fault certain to fail, and not every install attempt failed or left the agent stopped).
 * A launch deployment that fails ABANDONs the instance, so its termination comes after the failure.
 */
function avoidableFailures(
  inputs: RecoveryInputs,
  inScope: ReadonlyMap<string, Instance>,
): Pick<RecoveryFigures, "avoidableLaunchDeploymentFailures" | "avoidableLaunchDeploymentFailureInstances"> {
  const avoidable: AvoidableFailure[] = [];
  const installs = installOutcomes(inputs.trace);
  for (const deployment of inputs.launchDeployments) {
    if (deployment.status !== "Failed") continue;
    for (const target of deployment.targets) {
      const instance = inScope.get(target.instanceId);
      const failed = target.lifecycleEvents.find(
        (event) => event.status === "Failed" && event.diagnostics?.message === AGENT_NOT_RECEIVING_MESSAGE,
      );
      if (!instance || !failed) continue;
      const failedAt = failed.endTime ?? deployment.completeTime ?? Number.POSITIVE_INFINITY;
      const registeredAt = instance.ssm.registeredAt;
      const goingAwayAt = Math.min(
        instance.milestones.abandoned ?? Number.POSITIVE_INFINITY,
        instance.milestones.terminating ?? Number.POSITIVE_INFINITY,
        instance.milestones.terminated ?? Number.POSITIVE_INFINITY,
      );
      if (registeredAt === null || registeredAt > failedAt || goingAwayAt <= failedAt) continue;
      if (!installCouldSucceed(installs, instance)) continue;
      avoidable.push({
        deploymentId: deployment.id,
        instanceId: instance.id,
        failedAfterSeconds: round((failedAt - instance.launchedAt) / 1000),
      });
    }
  }
  return {
    avoidableLaunchDeploymentFailures: avoidable.length,
    avoidableLaunchDeploymentFailureInstances: avoidable,
  };
}

/** The agent installs each instance got: how many, and whether one left the agent running. */
function installOutcomes(trace: readonly TraceEntry[]): Map<string, { attempts: number; running: boolean }> {
  const outcomes = new Map<string, { attempts: number; running: boolean }>();
  for (const entry of trace) {
    if (
      entry.instanceId === undefined ||
      (entry.kind !== "install.failed" && entry.kind !== "install.succeeded")
    )
      continue;
    const outcome = outcomes.get(entry.instanceId) ?? { attempts: 0, running: false };
    outcome.attempts++;
    if (entry.kind === "install.succeeded" && entry.data?.agentRunning === true) outcome.running = true;
    outcomes.set(entry.instanceId, outcome);
  }
  return outcomes;
}

function installCouldSucceed(
  outcomes: ReadonlyMap<string, { attempts: number; running: boolean }>,
  instance: Instance,
): boolean {
  if ((instance.faults.installFailureProbability ?? 0) >= 1) return false;
  const outcome = outcomes.get(instance.id);
  return outcome === undefined || outcome.running;
}

/** The first few avoidable failures by instance and deployment, and how many more (for a check's detail). */
export function describeAvoidable(failures: readonly AvoidableFailure[], shown = 10): string {
  const named = failures
    .slice(0, shown)
    .map((item) => `${item.instanceId} (${item.deploymentId}, ${item.failedAfterSeconds} s after launch)`);
  const more = failures.length > shown ? `, and ${failures.length - shown} more` : "";
  return named.length > 0 ? `: ${named.join(", ")}${more}` : "";
}

/** Nearest-rank percentiles rounded to a tenth; null for each when there are no values. */
export function nearestRanks(values: readonly number[], ranks: readonly number[]): (number | null)[] {
  if (values.length === 0) return ranks.map(() => null);
  const sorted = [...values].sort((a, b) => a - b);
  return ranks.map((p) =>
    round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!),
  );
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
