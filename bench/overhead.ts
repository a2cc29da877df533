import type { Instance } from "../sandbox/world/instances.js";
import type { LifecycleAction } from "../sandbox/world/lifecycle-action.js";
import type { Invocation } from "../sandbox/world/ssm/records.js";
import { round } from "./harness.js";

/**
 * The overhead the service adds to each launch: from the start of the lifecycle action to the
 * service's CompleteLifecycleAction, against the physical floor of that very instance, its own SSM
 * registration delay (counted from the start of the action) plus the run time of its install and of
 * its verification, back to back, as if each step started the moment the previous one ended. When no
 * verification command of its own follows the install (the install document verifies in its last
 * step, or the installer does not verify), the floor is registration plus the install's run, and the
 * verification spans below are 0.
 */

/**
 * Where the time between the floor and the actual goes, per instance (medians, AWS seconds): each
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
  /** From the verification's end (or the install's, without one) to the CompleteLifecycleAction that let the instance in. */
  verifyEndToComplete: number;
}

/** One instance let in by the hook: its floor, its actual hook-to-complete time and the waits, AWS ms. */
export interface OverheadSample {
  idealMs: number;
  actualMs: number;
  spansMs: OverheadBreakdown;
  /**
   * The floor's parts on the shared clock, so that a schedule across instances (bench/quota-floor.ts)
   * can be laid over them: the start of the lifecycle action and the SSM registration (absolute AWS
   * ms), and the run time of the install plus that of its own verification, if any.
   */
  timeline: { startedAt: number; registeredAt: number; runMs: number };
}

export interface OverheadFigures {
  /** Median over instances of (hook-to-complete - floor) / floor. */
  overheadP50: number;
  /** 95th percentile (nearest rank) of the same ratio. */
  overheadP95: number;
  /** Median of the floor, AWS seconds. */
  idealSecondsP50: number;
  breakdownP50: OverheadBreakdown;
  /** Instances the figures are about. */
  measured: number;
}

/** What the overhead is read from: the world's SSM invocations, lifecycle actions and instances. */
export interface OverheadWorld {
  ssm: {
    invocations: readonly Pick<
      Invocation,
      "instanceId" | "kind" | "status" | "requestedAt" | "startedAt" | "endedAt"
    >[];
  };
  autoScaling: {
    actions: readonly Pick<LifecycleAction, "hookName" | "instanceId" | "startedAt" | "completed">[];
  };
  instances: ReadonlyMap<string, { milestones: Pick<Instance["milestones"], "ssmOnline"> }>;
}

/** The instances that `hookName` let in (CONTINUE, by the API) since `since` after a successful install. */
export function overheadSamples(world: OverheadWorld, hookName: string, since: number): OverheadSample[] {
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
  const samples: OverheadSample[] = [];
  for (const action of world.autoScaling.actions) {
    if (action.hookName !== hookName || action.startedAt < since) continue;
    if (action.completed?.by !== "api" || action.completed.result !== "CONTINUE") continue;
    const instance = world.instances.get(action.instanceId);
    const { install, verify: lastVerify } = succeeded.get(action.instanceId) ?? {};
    if (!instance || !install) continue;
    // Only a verification sent after the install ended is a step of its own after it.
    const verify = lastVerify && lastVerify.requestedAt >= install.endedAt ? lastVerify : undefined;
    const registered = Math.max(instance.milestones.ssmOnline ?? action.startedAt, action.startedAt);
    const lastEnd = verify?.endedAt ?? install.endedAt;
    const runMs = install.endedAt - install.startedAt + (verify ? verify.endedAt - verify.startedAt : 0);
    samples.push({
      idealMs: registered - action.startedAt + runMs,
      actualMs: action.completed.at - action.startedAt,
      spansMs: {
        registrationToInstallSent: install.requestedAt - registered,
        installDelivery: install.startedAt - install.requestedAt,
        installEndToVerifySent: verify ? verify.requestedAt - install.endedAt : 0,
        verifyDelivery: verify ? verify.startedAt - verify.requestedAt : 0,
        verifyEndToComplete: action.completed.at - lastEnd,
      },
      timeline: { startedAt: action.startedAt, registeredAt: registered, runMs },
    });
  }
  return samples;
}

export function summarizeOverheads(samples: readonly OverheadSample[]): OverheadFigures {
  const measured = samples.filter((sample) => sample.idealMs > 0);
  const ratios = measured.map((sample) => (sample.actualMs - sample.idealMs) / sample.idealMs);
  const seconds = (values: number[]) => (values.length === 0 ? 0 : round(median(values) / 1000, 1));
  const span = (key: keyof OverheadBreakdown) => seconds(measured.map((sample) => sample.spansMs[key]));
  const breakdownP50: OverheadBreakdown = {
    registrationToInstallSent: span("registrationToInstallSent"),
    installDelivery: span("installDelivery"),
    installEndToVerifySent: span("installEndToVerifySent"),
    verifyDelivery: span("verifyDelivery"),
    verifyEndToComplete: span("verifyEndToComplete"),
  };
  return {
    overheadP50: ratios.length === 0 ? 0 : round(median(ratios), 3),
    overheadP95: ratios.length === 0 ? 0 : round(nearestRank(ratios, 0.95), 3),
    idealSecondsP50: seconds(measured.map((sample) => sample.idealMs)),
    breakdownP50,
    measured: measured.length,
  };
}

export function overheads(world: OverheadWorld, hookName: string, since: number): OverheadFigures {
  return summarizeOverheads(overheadSamples(world, hookName, since));
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The nearest-rank percentile, as sandbox/scenarios/measure.ts takes them. */
export function nearestRank(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
