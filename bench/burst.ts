import type { DeliveryFaults } from "../sandbox/events/bus.js";
import { skipIdleTime } from "../sandbox/runtime/idle-skip.js";
import { createSandbox } from "../sandbox/sandbox.js";
import { addGroupWithDeployments } from "../sandbox/scenarios/fleet.js";
import { harmFigures, stageScope, watchHarm } from "../sandbox/scenarios/harm-watch.js";
import { measure, type Percentiles } from "../sandbox/scenarios/measure.js";
import type { RateLimit } from "../sandbox/server/traffic.js";
import type { StageConfigInput } from "../stacks/config.js";
import { gbSecondsPer1000 } from "./billing.js";
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
import { type OverheadBreakdown, overheadSamples, summarizeOverheads } from "./overhead.js";
import { type QuotaFloorFigures, quotaFloor, quotaLimits } from "./quota-floor.js";

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
  /** Drops, duplicates and delays of EventBridge deliveries (every rule: launch events and SSM's alike). */
  events?: DeliveryFaults;
}

export interface BurstResult {
  instances: number;
  /** In service with a verified, current agent, as a share of the instances asked for. */
  verifiedShare: number;
  lifecycleTimeouts: number;
  /** Lifecycle actions of the service's own hook that ran out of heartbeat. */
  hookTimeouts: number;
  /** Instances that ended neither in service with a verified agent nor abandoned with a reason. */
  lost: number;
  duplicateInstalls: number;
  /** SSM requests the server answered (throttled retries included) per instance launched. */
  ssmCallsPerInstance: number;
  autoScalingCallsPerInstance: number;
  throttled: number;
  hookToCompleteSeconds: Percentiles;
  /** Median over instances of (hook-to-complete - floor) / floor (bench/overhead.ts). */
  overheadP50: number;
  /** 95th percentile (nearest rank) of the same ratio. */
  overheadP95: number;
  /** Instances the overhead figures are about (let in by the hook after a successful install and verification). */
  overheadMeasured: number;
  /** Median of the floor: the instance's own registration + install + verification time. */
  idealSecondsP50: number;
  /** Where the overhead goes: medians of the waits between the steps, AWS seconds. */
  overheadBreakdownP50: OverheadBreakdown;
  /**
   * The same instances' floor with the API rate limits laid over it (bench/quota-floor.ts): hook start
   * to completion of an ideal client under the run's token buckets, AWS seconds.
   */
  quotaFloor: QuotaFloorFigures["quotaFloor"];
  /** Per instance (hook-to-complete - quota floor) / quota floor: median and 95th percentile (nearest rank). */
  overheadOverQuotaFloor: QuotaFloorFigures["overheadOverQuotaFloor"];
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
  /**
   * Lambda GB-seconds billed for the launch function per 1,000 instances launched: the sum over its
   * invocations of billed duration (AWS time) x configured memory (bench/billing.ts).
   */
  lambdaGbSecondsPer1000: number;
  /** Memory of the launch function, MB. */
  launchMemoryMb: number;
  /** What the event bus did with the deliveries (drops and duplicates when `events` asks for them). */
  eventDeliveries: { matched: number; delivered: number; dropped: number; duplicated: number };
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
    events: options.events,
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
    const samples = overheadSamples(world, service.config.hook.name, since);
    const overhead = summarizeOverheads(samples);
    const quota = quotaFloor(samples, quotaLimits(options.rates));
    const { matched, delivered, dropped, duplicated } = sandbox.bus.stats;
    const { realSeconds, eventLoopDelayP99Seconds } = runClock.stop();
    return {
      instances: options.instances,
      verifiedShare: round(figures.verified / options.instances, 4),
      lifecycleTimeouts: figures.lifecycleTimeouts,
      hookTimeouts: world.autoScaling.actions.filter(
        (action) =>
          action.hookName === service.config.hook.name &&
          action.startedAt >= since &&
          action.completed?.by === "timeout",
      ).length,
      lost: figures.lost,
      duplicateInstalls: figures.duplicateInstalls,
      ssmCallsPerInstance: perInstance(sandbox.counters.total("SSM"), figures.instances),
      autoScalingCallsPerInstance: perInstance(sandbox.counters.total("AutoScaling"), figures.instances),
      throttled: figures.throttled,
      hookToCompleteSeconds: figures.hookToCompleteSeconds,
      overheadP50: overhead.overheadP50,
      overheadP95: overhead.overheadP95,
      overheadMeasured: overhead.measured,
      idealSecondsP50: overhead.idealSecondsP50,
      overheadBreakdownP50: overhead.breakdownP50,
      quotaFloor: quota.quotaFloor,
      overheadOverQuotaFloor: quota.overheadOverQuotaFloor,
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
      lambdaGbSecondsPer1000: gbSecondsPer1000(service.launch.invocations, figures.instances),
      launchMemoryMb: service.config.launch.memoryMb,
      eventDeliveries: { matched, delivered, dropped, duplicated },
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
