import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type QuotaFloorInput,
  type QuotaLimits,
  quotaFloor,
  quotaFloorMs,
  quotaLimits,
  rateLimitedCalls,
} from "../../bench/quota-floor.js";
import { clock } from "../../functions/core/common/clock.js";
import { ASSUMED_RATE_LIMITS } from "../../sandbox/server/rates.js";
import { Traffic } from "../../sandbox/server/traffic.js";

/** An instance whose lifecycle action starts at `startedAt`, registers at `registeredAt` and whose install runs `runMs`. */
function instance(registeredAt: number, runMs: number, startedAt = 0, actualMs = 0): QuotaFloorInput {
  return { actualMs, timeline: { startedAt, registeredAt, runMs } };
}

const unlimited: QuotaLimits = { instancesPerCommand: 50 };
const oneASecond = { rate: 1, burst: 1 };

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the quota floor's schedule", () => {
  it("pushes later completions back at the CompleteLifecycleAction rate, earliest ready first", () => {
    const fleet = [
      instance(0, 10_000), // ends 10 s
      instance(0, 10_000), // ends 10 s
      instance(2_000, 8_000), // ends 10 s
      instance(0, 30_000), // ends 30 s, after the queue has drained
      instance(0, 5_000), // ends 5 s: listed last, completed first
    ];
    const floors = quotaFloorMs(fleet, { ...unlimited, completeLifecycleAction: oneASecond });
    // 5 s takes the only token; at 10 s one has refilled, then one a second; at 30 s the bucket is full again.
    expect(floors).toEqual([10_000, 11_000, 12_000, 30_000, 5_000]);
    // Without the quota each would complete the moment its install ends.
    expect(quotaFloorMs(fleet, unlimited)).toEqual([10_000, 10_000, 10_000, 30_000, 5_000]);
  });

  it("sends at most 50 instances per SendCommand, one call per token", () => {
    const fleet = Array.from({ length: 120 }, () => instance(0, 10_000));
    const floors = quotaFloorMs(fleet, { ...unlimited, sendCommand: oneASecond });
    // 50 sent at 0 s, 50 at 1 s (the next token), the last 20 at 2 s.
    expect(floors.filter((floor) => floor === 10_000)).toHaveLength(50);
    expect(floors.filter((floor) => floor === 11_000)).toHaveLength(50);
    expect(floors.filter((floor) => floor === 12_000)).toHaveLength(20);
    // The limit is the API's, as the sandbox enforces it.
    expect(quotaLimits(ASSUMED_RATE_LIMITS).instancesPerCommand).toBe(50);
  });

  it("takes into one SendCommand every instance registered by the time a token is there", () => {
    const calls = rateLimitedCalls([0, 100, 200, 300, 1_500], oneASecond, 50);
    // The first goes alone at 0 s; the next three wait for the token at 1 s and share it; the last
    // registers after that call and takes the token at 2 s.
    expect(calls).toEqual([0, 1_000, 1_000, 1_000, 2_000]);
  });

  it("lets a burst through at once up to the bucket's capacity, and never refills beyond it", () => {
    const limits = { ...unlimited, completeLifecycleAction: { rate: 1, burst: 3 } };
    const fleet = [
      ...Array.from({ length: 5 }, () => instance(0, 10_000)),
      // Long after the first five: the bucket is full again, but holds only 3.
      ...Array.from({ length: 5 }, () => instance(0, 100_000)),
    ];
    expect(quotaFloorMs(fleet, limits)).toEqual([
      10_000, 10_000, 10_000, 11_000, 12_000, 100_000, 100_000, 100_000, 101_000, 102_000,
    ]);
  });

  it("does not delay an instance that registers after the queue has drained", () => {
    const limits = { ...unlimited, sendCommand: oneASecond, completeLifecycleAction: oneASecond };
    const fleet = [
      ...Array.from({ length: 60 }, () => instance(0, 10_000)),
      // Its lifecycle action starts at 190 s and it registers at 200 s: its floor is its own, 20 s.
      instance(200_000, 10_000, 190_000),
    ];
    const floors = quotaFloorMs(fleet, limits);
    // Sent: 50 at 0 s and 10 at 1 s; completed one a second from 10 s: the 60th at 69 s.
    expect(Math.max(...floors.slice(0, 60))).toBe(69_000);
    expect(floors[60]).toBe(20_000);
  });

  it("never puts an instance below its own floor of registration plus install", () => {
    // A burst shaped like the bench's: registrations over 15-90 s, installs of 40-80 s, the assumed rates.
    const fleet = Array.from({ length: 300 }, (_, index) =>
      instance(15_000 + ((index * 7_919) % 75_000), 40_000 + ((index * 104_729) % 40_000), index * 10),
    );
    const floors = quotaFloorMs(fleet, quotaLimits(ASSUMED_RATE_LIMITS));
    for (const [index, { timeline }] of fleet.entries())
      expect(floors[index]).toBeGreaterThanOrEqual(
        timeline.registeredAt - timeline.startedAt + timeline.runMs,
      );
  });

  it("reads the rates the sandbox enforces, the most specific key first", () => {
    expect(quotaLimits(ASSUMED_RATE_LIMITS)).toMatchObject({
      sendCommand: ASSUMED_RATE_LIMITS["SSM.*"],
      completeLifecycleAction: ASSUMED_RATE_LIMITS["AutoScaling.*"],
    });
    expect(
      quotaLimits({
        "AutoScaling.*": { rate: 10, burst: 20 },
        "AutoScaling.CompleteLifecycleAction": { rate: 2, burst: 4 },
      }),
    ).toMatchObject({ sendCommand: undefined, completeLifecycleAction: { rate: 2, burst: 4 } });
  });

  it("admits each call at the first millisecond the sandbox's own token bucket would", () => {
    // 40 completions ready over 1.5 s against the assumed rate (10/s, burst 20), brute-forced
    // through the sandbox's Traffic millisecond by millisecond.
    const readyAt = Array.from({ length: 40 }, (_, index) => Math.floor((index * 1_500) / 40));
    const limit = ASSUMED_RATE_LIMITS["AutoScaling.*"]!;
    let now = 0;
    vi.spyOn(clock, "now").mockImplementation(() => now);
    const traffic = new Traffic({ rateLimits: { "AutoScaling.*": limit } });
    const admitted: number[] = [];
    for (const ready of readyAt) {
      now = Math.max(ready, admitted.at(-1) ?? 0);
      while (!traffic.admit("AutoScaling.CompleteLifecycleAction")) now += 1;
      admitted.push(now);
    }
    const scheduled = rateLimitedCalls(readyAt, limit, 1);
    // Within the millisecond the brute force steps by (the bucket's float arithmetic may land a
    // token a hair after the exact moment).
    for (const [index, at] of scheduled.entries())
      expect(Math.abs(at - admitted[index]!)).toBeLessThanOrEqual(1);
    // The bucket binds: ready faster than 10 a second, the last goes out after it is ready.
    expect(scheduled.at(-1)).toBeGreaterThan(readyAt.at(-1)!);
  });
});

describe("the quota floor's figures", () => {
  it("takes the median and the 95th percentile of the floor and of (actual - floor) / floor", () => {
    const fleet = [
      instance(0, 10_000, 0, 12_000),
      instance(0, 10_000, 0, 11_000),
      instance(2_000, 8_000, 0, 15_000),
      instance(0, 30_000, 0, 33_000),
      instance(0, 5_000, 0, 5_000),
    ];
    // Floors 10, 11, 12, 30, 5 s (the first test); ratios 0.2, 0, 0.25, 0.1, 0.
    expect(quotaFloor(fleet, { ...unlimited, completeLifecycleAction: oneASecond })).toEqual({
      quotaFloor: { p50: 11, p95: 30 },
      overheadOverQuotaFloor: { p50: 0.1, p95: 0.25 },
    });
  });

  it("reports zeros, not NaN, when no instance was let in", () => {
    expect(quotaFloor([], quotaLimits(ASSUMED_RATE_LIMITS))).toEqual({
      quotaFloor: { p50: 0, p95: 0 },
      overheadOverQuotaFloor: { p50: 0, p95: 0 },
    });
  });
});
