import { DescribeAutoScalingGroupsCommand } from "@aws-sdk/client-auto-scaling";
import { afterEach, describe, expect, it } from "vitest";
import { seedMathRandom } from "../../bench/harness.js";
import { clock } from "../../functions/core/common/clock.js";
import { skipIdleTime } from "../../sandbox/runtime/idle-skip.js";
import { createSandbox, type Sandbox } from "../../sandbox/sandbox.js";

const open: Sandbox[] = [];
afterEach(async () => {
  for (const sandbox of open.splice(0)) await sandbox.close();
});

async function sandboxAtRealTime(): Promise<Sandbox> {
  // One AWS millisecond per real millisecond: without skipping, an AWS hour would take an hour.
  const sandbox = await createSandbox({ seed: 1, clockScale: 1 });
  open.push(sandbox);
  return sandbox;
}

describe("skipping the AWS time in which nothing can happen", () => {
  it("runs an hour of timers in moments, each at its own AWS time and in order", async () => {
    const sandbox = await sandboxAtRealTime();
    const { world } = sandbox;
    const skip = await skipIdleTime(sandbox);
    const start = clock.now();
    const fired: { name: string; at: number }[] = [];
    const done = new Promise<void>((resolve) => {
      world.scheduler.after(3_600_000, () => {
        fired.push({ name: "agent wait", at: clock.now() - start });
        resolve();
      });
    });
    world.scheduler.after(300_000, () => {
      fired.push({ name: "sweep", at: clock.now() - start });
    });
    const handler = (async () => {
      await clock.sleep(5_000);
      fired.push({ name: "handler poll", at: clock.now() - start });
    })();
    const realStart = performance.now();
    await Promise.all([done, handler]);
    const { skippedSeconds } = skip.stop();

    expect(performance.now() - realStart).toBeLessThan(5_000);
    expect(fired.map((entry) => entry.name)).toEqual(["handler poll", "sweep", "agent wait"]);
    for (const [entry, due] of fired.map(
      (entry, index) => [entry, [5_000, 300_000, 3_600_000][index]!] as const,
    )) {
      expect(entry.at).toBeGreaterThanOrEqual(due);
      expect(entry.at).toBeLessThan(due + 1_000);
    }
    expect(skippedSeconds).toBeGreaterThan(3_500);
  });

  it("does not skip while a call is on the wire, and skips its retry backoff like any other wait", async () => {
    const sandbox = await sandboxAtRealTime();
    // Every Auto Scaling call but the first is throttled: the SDK retries with its backoff.
    sandbox.server.attach(sandbox.world, { rateLimits: { "AutoScaling.*": { rate: 0.001, burst: 1 } } });
    const { autoScaling } = await import("../../functions/core/common/clients.js");
    const restoreRandom = seedMathRandom("idle-skip-backoff");
    const skip = await skipIdleTime(sandbox);
    await autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    const start = clock.now();
    const realStart = performance.now();
    const error = await autoScaling
      .send(new DescribeAutoScalingGroupsCommand({}))
      .catch((caught: unknown) => caught);
    const realMs = performance.now() - realStart;
    const awsMs = clock.now() - start;
    skip.stop();
    restoreRandom();

    expect((error as Error).name).toBe("Throttling");
    expect(sandbox.counters.throttled["AutoScaling.DescribeAutoScalingGroups"]).toBe(5);
    // The four backoffs between the five attempts took AWS time, waited on the world's timers and
    // skipped, not slept in real time.
    expect(awsMs).toBeGreaterThan(1_000);
    expect(realMs).toBeLessThan(awsMs / 2);
  });
});
