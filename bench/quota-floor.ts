import { lookup, type RateLimit } from "../sandbox/server/traffic.js";
import { SEND_COMMAND_MAX_INSTANCES } from "../sandbox/world/ssm/run-command.js";
import { round } from "./harness.js";
import { median, nearestRank, type OverheadSample } from "./overhead.js";

/**
 * The quota floor: the per-instance floor of bench/overhead.ts (registration, then the install and its
 * verification, back to back) with the API rate limits no client can beat laid over it. It is the
 * completion schedule of an ideal client that makes only the calls a launch cannot do without, each
 * at the earliest moment the sandbox's token bucket for that operation (`sandbox/server/traffic.ts`,
 * the rates of `sandbox/server/rates.ts`) would admit it:
 *
 * 1. Registration: the instance's own SSM registration (from the start of its lifecycle action), as
 *    measured. The ideal client learns of it without a call.
 * 2. One `SendCommand` of an install-and-verify document to every registered instance not yet sent
 *    one, up to 50 instances per call (the API's limit), at the `SSM.SendCommand` rate: a call goes
 *    out as soon as a token and at least one registered instance are there, and takes every instance
 *    registered by then, earliest first. The command then runs for the instance's own measured time:
 *    its successful install, plus its verification when one was sent as a command of its own (an
 *    ideal client verifies in the install's last step, so the two run back to back in one command).
 * 3. One `CompleteLifecycleAction` per instance, at the `AutoScaling.CompleteLifecycleAction` rate,
 *    in the order the commands end (earliest ready first).
 *
 * Each bucket holds `burst` tokens when the burst begins (the sandbox creates a bucket full at its
 * operation's first call, and nothing calls these operations before the burst) and refills at `rate`
 * per AWS second up to `burst` again, as the sandbox's bucket does.
 *
 * Left out, so the floor stays a floor:
 * - Registration polling (`DescribeInstanceInformation`) and result reads (`ListCommandInvocations`,
 *   `GetCommandInvocation`): events could replace both. The install-and-verify document fails unless
 *   the agent ends up running at an acceptable version, so SSM's command-invocation status-change
 *   event alone says an instance may go in service; and registration could be signalled by the
 *   instance itself (State Manager's association run at first Online, or user data). Their buckets
 *   are separate from the two above in the sandbox, so leaving them out changes no other call.
 * - Heartbeats, event delivery, Lambda batching windows and SSM's delivery of a command to the
 *   instance (as in the per-instance floor), every retry, and the instances the hook did not let in
 *   (abandoned ones take no quota here, though a real client would have to complete them too).
 * - Installs by a State Manager association instead of `SendCommand`: a different design, with its
 *   own limits, that this floor does not model.
 *
 * Earliest ready first is optimal for one rate-limited resource serving one instance per call (the
 * completions): no client can make its k-th completion before this schedule's k-th, for every k. A
 * particular instance can still be completed before its turn here by a client that lets it jump the
 * queue, at another's expense, so a few per-instance ratios may be slightly negative. For the batched
 * `SendCommand` the greedy schedule is not always optimal: a client that foresaw registrations could
 * hold a token back to batch later instances sooner, at the expense of the instance it kept waiting.
 */
export interface QuotaLimits {
  /** `SSM.SendCommand`; undefined when not throttled. */
  sendCommand?: RateLimit;
  /** `AutoScaling.CompleteLifecycleAction`; undefined when not throttled. */
  completeLifecycleAction?: RateLimit;
  /** Instances one SendCommand may name. */
  instancesPerCommand: number;
}

/** The limits of the sandbox's rate table that the quota floor obeys. */
export function quotaLimits(rates: Record<string, RateLimit>): QuotaLimits {
  return {
    sendCommand: lookup(rates, "SSM.SendCommand"),
    completeLifecycleAction: lookup(rates, "AutoScaling.CompleteLifecycleAction"),
    instancesPerCommand: SEND_COMMAND_MAX_INSTANCES,
  };
}

/** One instance's measured times, absolute AWS ms, as bench/overhead.ts reads them. */
export type QuotaFloorInput = Pick<OverheadSample, "actualMs" | "timeline">;

export interface QuotaFloorFigures {
  /** Hook start to completion under the quota schedule, AWS seconds: median and 95th percentile (nearest rank). */
  quotaFloor: { p50: number; p95: number };
  /** Per instance (actual - quota floor) / quota floor: median and 95th percentile (nearest rank). */
  overheadOverQuotaFloor: { p50: number; p95: number };
}

/**
 * A token bucket as the sandbox's (`sandbox/server/traffic.ts`), asked not "may I call now?" but
 * "when is the earliest I may call, at or after `at`?". Calls are asked in non-decreasing order.
 */
class BucketSchedule {
  private tokens: number;
  private updatedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly limit: RateLimit | undefined) {
    this.tokens = limit?.burst ?? 0;
  }

  /** Takes a token at the earliest moment at or after `at` that has one; returns that moment. */
  take(at: number): number {
    const { limit } = this;
    if (!limit) return at;
    const now = Math.max(at, this.updatedAt);
    if (this.updatedAt !== Number.NEGATIVE_INFINITY)
      this.tokens = Math.min(limit.burst, this.tokens + ((now - this.updatedAt) / 1000) * limit.rate);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return now;
    }
    // The moment the bucket reaches one token, which that call spends at once.
    const ready = now + ((1 - this.tokens) / limit.rate) * 1000;
    this.tokens = 0;
    this.updatedAt = ready;
    return ready;
  }
}

/**
 * The greedy schedule of one rate-limited operation: `readyAt[i]` is when item i may first be
 * called for, `perCall` how many items one call may take. Returns, in the input's order, the moment
 * of the call that took each item. A call goes out at the earliest moment the bucket and a waiting
 * item allow, and takes every item ready by then, earliest first, up to `perCall`.
 */
export function rateLimitedCalls(
  readyAt: readonly number[],
  limit: RateLimit | undefined,
  perCall: number,
): number[] {
  if (!(perCall >= 1)) throw new RangeError(`perCall must be at least 1, got ${perCall}`);
  const order = readyAt.map((_, index) => index).sort((a, b) => readyAt[a]! - readyAt[b]!);
  const bucket = new BucketSchedule(limit);
  const calledAt = new Array<number>(readyAt.length);
  let next = 0;
  while (next < order.length) {
    const at = bucket.take(readyAt[order[next]!]!);
    for (let taken = 0; taken < perCall && next < order.length && readyAt[order[next]!]! <= at; taken++)
      calledAt[order[next++]!] = at;
  }
  return calledAt;
}

/** Each instance's hook start to completion under the quota schedule, AWS ms, in the input's order. */
export function quotaFloorMs(samples: readonly QuotaFloorInput[], limits: QuotaLimits): number[] {
  const sentAt = rateLimitedCalls(
    samples.map((sample) => sample.timeline.registeredAt),
    limits.sendCommand,
    limits.instancesPerCommand,
  );
  const endedAt = samples.map((sample, index) => sentAt[index]! + sample.timeline.runMs);
  const completedAt = rateLimitedCalls(endedAt, limits.completeLifecycleAction, 1);
  return samples.map((sample, index) => completedAt[index]! - sample.timeline.startedAt);
}

export function quotaFloor(samples: readonly QuotaFloorInput[], limits: QuotaLimits): QuotaFloorFigures {
  const floors = quotaFloorMs(samples, limits);
  const measured = samples
    .map((sample, index) => ({ actualMs: sample.actualMs, floorMs: floors[index]! }))
    .filter((sample) => sample.floorMs > 0);
  if (measured.length === 0)
    return { quotaFloor: { p50: 0, p95: 0 }, overheadOverQuotaFloor: { p50: 0, p95: 0 } };
  const seconds = measured.map((sample) => sample.floorMs / 1000);
  const ratios = measured.map((sample) => (sample.actualMs - sample.floorMs) / sample.floorMs);
  return {
    quotaFloor: { p50: round(median(seconds), 1), p95: round(nearestRank(seconds, 0.95), 1) },
    overheadOverQuotaFloor: { p50: round(median(ratios), 3), p95: round(nearestRank(ratios, 0.95), 3) },
  };
}
