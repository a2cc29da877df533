import { createSandbox, type Sandbox } from "../sandbox/sandbox.js";
import { addGroupWithDeployments } from "../sandbox/scenarios/fleet.js";
import { harmFigures, stageScope, watchHarm } from "../sandbox/scenarios/harm-watch.js";
import { measure, type Percentiles } from "../sandbox/scenarios/measure.js";
import type { RateLimit } from "../sandbox/server/traffic.js";
import type { ServiceDeployment } from "../sandbox/service.js";
import type { StageConfigInput } from "../stacks/config.js";
import {
  type HarmSummary,
  ofService,
  perInstance,
  round,
  seedMathRandom,
  startRunClock,
  summarizeHarm,
  tallySsmCalls,
  waitUntilSettled,
} from "./harness.js";
import { skipIdleTime } from "./idle-skip.js";

/**
 * The morning burst: one group scales from 0 to N at once, with the service deployed as the stacks
 * deploy it, while SSM and Auto Scaling throttle every operation with a token bucket. The group also
 * has its CodeDeploy deployment group (and so CodeDeploy's own launch hook and launch deployments), as
 * a real group would.
 */
export interface BurstOptions {
  instances: number;
  seed: number | string;
  clockScale: number;
  rates: Record<string, RateLimit>;
  /** Stage configuration of the service, merged over the groups in scope. */
  config?: StageConfigInput;
  /** CodeDeploy's wait for an absent agent, AWS seconds. */
  agentWaitSeconds?: number;
}

export interface BurstResult {
  instances: number;
  /** In service with a verified, current agent, as a share of the instances asked for. */
  verifiedShare: number;
  lifecycleTimeouts: number;
  duplicateInstalls: number;
  /** SSM requests the server answered (throttled retries included) per instance launched. */
  ssmCallsPerInstance: number;
  autoScalingCallsPerInstance: number;
  throttled: number;
  hookToCompleteSeconds: Percentiles;
  /** Median over instances of (hook-to-complete - ideal) / ideal. */
  overheadP50: number;
  /** Median of the ideal: the instance's own registration + install + verification time. */
  idealSecondsP50: number;
  /** Where the overhead goes: medians of the waits between the steps, AWS seconds. */
  overheadBreakdownP50: OverheadBreakdown;
  /** Instances launched, replacements included. */
  launched: number;
  inService: number;
  verified: number;
  /** Instances abandoned and replaced. */
  replaced: number;
  launchDeploymentsFailed: number;
  ssmCalls: number;
  autoScalingCalls: number;
  callsByOperation: { SSM: Record<string, number>; AutoScaling: Record<string, number> };
  throttledByOperation: Record<string, number>;
  /** SSM calls as the callers asked for them (before SDK retries), by purpose. */
  ssmCallsByPurpose: Record<string, number>;
  launchInvocations: {
    invocations: number;
    errors: number;
    timeouts: number;
    /** What the failed invocations threw, by message (ids and numbers left out), most frequent first. */
    errorMessages: Record<string, number>;
  };
  /** Lifecycle actions that ran out of heartbeat, by hook. */
  lifecycleTimeoutsByHook: Record<string, number>;
  /** What "first, do no harm" forbids, done during the burst (0 when none). */
  harm: HarmSummary;
  settled: boolean;
  awsSeconds: number;
  realSeconds: number;
  clockScale: number;
  eventLoopDelayP99Seconds: number;
  /** AWS seconds skipped because nothing could happen in them. */
  skippedSeconds: number;
}

export const BURST_GROUP = "fleet";

export async function runBurst(options: BurstOptions): Promise<BurstResult> {
  const restoreRandom = seedMathRandom(`burst/${options.seed}/${options.instances}`);
  const runClock = startRunClock(options.clockScale);
  const sandbox = await createSandbox({
    seed: options.seed,
    clockScale: options.clockScale,
    traffic: { rateLimits: options.rates },
    world: { codeDeploy: { agentWaitSeconds: options.agentWaitSeconds ?? 300 } },
  });
  try {
    const { world } = sandbox;
    const pair = addGroupWithDeployments(world, {
      name: BURST_GROUP,
      maxSize: options.instances * 2,
      image: { imageId: "ami-0base2026", bakedAgent: null },
    });
    const service = await sandbox.deployService(
      mergeConfig({ groups: [BURST_GROUP], deploymentGroups: [pair] }, options.config),
    );
    const purposes = await tallySsmCalls();
    const watch = watchHarm(sandbox);
    const skip = await skipIdleTime(sandbox);
    const since = world.now();
    world.autoScaling.setDesiredCapacity(BURST_GROUP, options.instances);
    const settled = await waitUntilSettled(
      sandbox,
      {
        groups: [BURST_GROUP],
        deploymentGroups: [pair],
        functions: [service.launch, service.failure],
        queues: [service.launchQueue],
      },
      { quietSeconds: 60, timeoutSeconds: 3 * 3600 },
    );
    const { skippedSeconds } = skip.stop();
    watch.stop();
    const harm = harmFigures(sandbox, watch.records, [stageScope(service)]);
    const awsSeconds = Math.round((world.now() - since) / 1000);
    const figures = measure(sandbox, {
      groups: [BURST_GROUP],
      hookName: service.config.hook.name,
      deploymentGroups: [pair],
      since,
    });
    const overhead = overheads(sandbox, service, since);
    const { realSeconds, eventLoopDelayP99Seconds } = runClock.stop();
    return {
      instances: options.instances,
      verifiedShare: round(figures.verified / options.instances, 4),
      lifecycleTimeouts: figures.lifecycleTimeouts,
      duplicateInstalls: figures.duplicateInstalls,
      ssmCallsPerInstance: perInstance(sandbox.counters.total("SSM"), figures.instances),
      autoScalingCallsPerInstance: perInstance(sandbox.counters.total("AutoScaling"), figures.instances),
      throttled: figures.throttled,
      hookToCompleteSeconds: figures.hookToCompleteSeconds,
      overheadP50: overhead.overheadP50,
      idealSecondsP50: overhead.idealSecondsP50,
      overheadBreakdownP50: overhead.breakdownP50,
      launched: figures.instances,
      inService: figures.inService,
      verified: figures.verified,
      replaced: figures.abandoned,
      launchDeploymentsFailed: figures.launchDeploymentsFailed,
      ssmCalls: sandbox.counters.total("SSM"),
      autoScalingCalls: sandbox.counters.total("AutoScaling"),
      callsByOperation: {
        SSM: ofService(figures.apiCalls, "SSM"),
        AutoScaling: ofService(figures.apiCalls, "AutoScaling"),
      },
      throttledByOperation: { ...sandbox.counters.throttled },
      ssmCallsByPurpose: sortByCount(purposes.total()),
      launchInvocations: {
        invocations: service.launch.stats.invocations,
        errors: service.launch.stats.errors,
        timeouts: service.launch.stats.timeouts,
        errorMessages: tally(
          service.launch.invocations
            .filter((invocation) => invocation.error && !invocation.timedOut)
            .map((invocation) => `${invocation.error?.errorType}: ${invocation.error?.errorMessage}`),
        ),
      },
      lifecycleTimeoutsByHook: tally(
        sandbox.world.autoScaling.actions
          .filter((action) => action.startedAt >= since && action.completed?.by === "timeout")
          .map((action) => action.hookName),
      ),
      harm: summarizeHarm(watch.records, harm),
      settled,
      awsSeconds,
      realSeconds,
      clockScale: options.clockScale,
      eventLoopDelayP99Seconds,
      skippedSeconds,
    };
  } finally {
    await sandbox.close();
    restoreRandom();
  }
}

/**
 * Where the time between the ideal and the actual goes, per instance (medians, AWS seconds): each
 * span is a wait for the service to notice that a step ended (or for SSM to deliver a command); their
 * sum is the overhead.
 */
export interface OverheadBreakdown {
  /** From SSM registration (or the start of the action, if later) to our install command. */
  registrationToInstallSent: number;
  /** From our install command to the install starting on the instance (SSM delivery). */
  installDelivery: number;
  /** From the install's end to our verification command. */
  installEndToVerifySent: number;
  /** From our verification command to the script starting on the instance (SSM delivery). */
  verifyDelivery: number;
  /** From the verification's end to the CompleteLifecycleAction that let the instance in. */
  verifyEndToComplete: number;
}

/**
 * The overhead the service adds to each launch: from the start of the lifecycle action to the
 * service's CompleteLifecycleAction, against the ideal for that very instance, its own SSM
 * registration delay (counted from the start of the action) plus the run time of its install and of
 * its verification, back to back, as if each step started the moment the previous one ended.
 */
export function overheads(
  sandbox: Sandbox,
  service: ServiceDeployment,
  since: number,
): { overheadP50: number; idealSecondsP50: number; breakdownP50: OverheadBreakdown; measured: number } {
  const { world } = sandbox;
  const hookName = service.config.hook.name;
  type Run = { requestedAt: number; startedAt: number; endedAt: number };
  const succeeded = new Map<string, { install?: Run; verify?: Run }>();
  for (const invocation of world.ssm.invocations) {
    const { startedAt, endedAt, requestedAt } = invocation;
    if (invocation.status !== "Success" || startedAt === undefined || endedAt === undefined) continue;
    if (requestedAt < since || (invocation.kind !== "install" && invocation.kind !== "verify")) continue;
    const mine = succeeded.get(invocation.instanceId) ?? {};
    // The last successful run of each kind is the one that let the instance in.
    mine[invocation.kind] = { requestedAt, startedAt, endedAt };
    succeeded.set(invocation.instanceId, mine);
  }
  const ratios: number[] = [];
  const ideals: number[] = [];
  const spans: Record<keyof OverheadBreakdown, number[]> = {
    registrationToInstallSent: [],
    installDelivery: [],
    installEndToVerifySent: [],
    verifyDelivery: [],
    verifyEndToComplete: [],
  };
  for (const action of world.autoScaling.actions) {
    if (action.hookName !== hookName || action.startedAt < since) continue;
    if (action.completed?.by !== "api" || action.completed.result !== "CONTINUE") continue;
    const instance = world.instances.get(action.instanceId);
    const { install, verify } = succeeded.get(action.instanceId) ?? {};
    if (!instance || !install || !verify) continue;
    const registered = Math.max(instance.milestones.ssmOnline ?? action.startedAt, action.startedAt);
    const ideal =
      registered -
      action.startedAt +
      (install.endedAt - install.startedAt) +
      (verify.endedAt - verify.startedAt);
    ideals.push(ideal / 1000);
    ratios.push((action.completed.at - action.startedAt - ideal) / ideal);
    spans.registrationToInstallSent.push(install.requestedAt - registered);
    spans.installDelivery.push(install.startedAt - install.requestedAt);
    spans.installEndToVerifySent.push(verify.requestedAt - install.endedAt);
    spans.verifyDelivery.push(verify.startedAt - verify.requestedAt);
    spans.verifyEndToComplete.push(action.completed.at - verify.endedAt);
  }
  const seconds = (values: number[]) => (values.length === 0 ? 0 : round(median(values) / 1000, 1));
  return {
    overheadP50: ratios.length === 0 ? 0 : round(median(ratios), 3),
    idealSecondsP50: seconds(ideals.map((value) => value * 1000)),
    breakdownP50: {
      registrationToInstallSent: seconds(spans.registrationToInstallSent),
      installDelivery: seconds(spans.installDelivery),
      installEndToVerifySent: seconds(spans.installEndToVerifySent),
      verifyDelivery: seconds(spans.verifyDelivery),
      verifyEndToComplete: seconds(spans.verifyEndToComplete),
    },
    measured: ratios.length,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Objects merge key by key, anything else (arrays included) is replaced, as the stage configuration does. */
export function mergeConfig(
  base: StageConfigInput,
  override: StageConfigInput | undefined,
): StageConfigInput {
  if (!override) return base;
  const merge = (left: unknown, right: unknown): unknown => {
    if (!isPlainObject(left) || !isPlainObject(right)) return right === undefined ? left : right;
    const result: Record<string, unknown> = { ...left };
    for (const [key, value] of Object.entries(right)) result[key] = merge(left[key], value);
    return result;
  };
  return merge(base, override) as StageConfigInput;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Counts equal texts, with ids, tokens and numbers blanked so that alike messages add up. */
export function tally(texts: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const text of texts) {
    const key = text
      .replace(/\b(i-[0-9a-f]+|d-[A-Z0-9]{9}|[0-9a-f]{8}-[0-9a-f-]{27})\b/g, "<id>")
      .replace(/\d+(\.\d+)?/g, "<n>")
      .slice(0, 200);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return sortByCount(counts);
}

function sortByCount(table: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(table).sort((a, b) => b[1] - a[1]));
}
