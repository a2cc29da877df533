import type { DeliveryFaults } from "../sandbox/events/bus.js";
import { type BurstOptions, type BurstResult, runBurst } from "./burst.js";
import { round } from "./harness.js";

/**
 * What the fallback costs when EventBridge loses events. Delivery of these events is best effort
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event.html), so event
 * completion must never lose an instance to a dropped event, only time and calls: the same burst twice,
 * once with clean delivery and once with a share of every rule's deliveries dropped (launch events
 * and SSM's command-invocation events alike) and every delivered event sent twice.
 */
export const EVENT_LOSS_FAULTS = {
  dropProbability: 0.05,
  duplicateProbability: 1,
} as const satisfies DeliveryFaults;
export const EVENT_LOSS_INSTANCES = 200;

export interface EventLossRun {
  instances: number;
  launched: number;
  /** Must be 0: ended neither in service with a verified agent nor abandoned with a reason. */
  instancesLost: number;
  /** Lifecycle actions of the service's hook that ran out of heartbeat. */
  hookTimeouts: number;
  overheadP50: number;
  overheadP95: number;
  hookToCompleteP95Seconds: number;
  ssmCallsPerInstance: number;
  autoScalingCallsPerInstance: number;
  lambdaGbSecondsPer1000: number;
  eventsDropped: number;
  eventsDuplicated: number;
  settled: boolean;
  awsSeconds: number;
  realSeconds: number;
}

export interface EventLoss {
  instances: number;
  /** The lossy run's share of EventBridge deliveries dropped, and what it came to. */
  lossRate: number;
  verifiedShare: number;
  lifecycleTimeouts: number;
  lost: number;
  ssmCallsPerInstance: number;
  faults: DeliveryFaults;
  baseline: EventLossRun;
  withLoss: EventLossRun;
  /** withLoss minus baseline: what the lost and repeated events cost. */
  cost: {
    ssmCallsPerInstance: number;
    autoScalingCallsPerInstance: number;
    overheadP50: number;
    overheadP95: number;
    lambdaGbSecondsPer1000: number;
  };
}

export function eventLossRun(burst: BurstResult): EventLossRun {
  return {
    instances: burst.instances,
    launched: burst.launched,
    instancesLost: burst.lost,
    hookTimeouts: burst.hookTimeouts,
    overheadP50: burst.overheadP50,
    overheadP95: burst.overheadP95,
    hookToCompleteP95Seconds: burst.hookToCompleteSeconds.p95,
    ssmCallsPerInstance: burst.ssmCallsPerInstance,
    autoScalingCallsPerInstance: burst.autoScalingCallsPerInstance,
    lambdaGbSecondsPer1000: burst.lambdaGbSecondsPer1000,
    eventsDropped: burst.eventDeliveries.dropped,
    eventsDuplicated: burst.eventDeliveries.duplicated,
    settled: burst.settled,
    awsSeconds: burst.awsSeconds,
    realSeconds: burst.realSeconds,
  };
}

export function compareEventLoss(
  baseline: BurstResult,
  withLoss: BurstResult,
  faults: DeliveryFaults = EVENT_LOSS_FAULTS,
): EventLoss {
  const clean = eventLossRun(baseline);
  const lossy = eventLossRun(withLoss);
  const delta = (key: keyof EventLoss["cost"], digits: number) => round(lossy[key] - clean[key], digits);
  return {
    instances: withLoss.instances,
    lossRate: faults.dropProbability ?? 0,
    verifiedShare: withLoss.verifiedShare,
    lifecycleTimeouts: withLoss.lifecycleTimeouts,
    lost: withLoss.lost,
    ssmCallsPerInstance: withLoss.ssmCallsPerInstance,
    faults,
    baseline: clean,
    withLoss: lossy,
    cost: {
      ssmCallsPerInstance: delta("ssmCallsPerInstance", 2),
      autoScalingCallsPerInstance: delta("autoScalingCallsPerInstance", 2),
      overheadP50: delta("overheadP50", 3),
      overheadP95: delta("overheadP95", 3),
      lambdaGbSecondsPer1000: delta("lambdaGbSecondsPer1000", 1),
    },
  };
}

export async function runEventLoss(
  options: Omit<BurstOptions, "events">,
  progress: (line: string) => void = () => {},
): Promise<EventLoss> {
  progress(`event loss: ${options.instances} instances, clean delivery...`);
  const baseline = await runBurst(options);
  progress(
    `event loss: ${options.instances} instances, ${EVENT_LOSS_FAULTS.dropProbability * 100}% dropped, every event twice...`,
  );
  const withLoss = await runBurst({ ...options, events: EVENT_LOSS_FAULTS });
  return compareEventLoss(baseline, withLoss);
}
