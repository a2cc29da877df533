import { describe, expect, it } from "vitest";
import { morning } from "../../sandbox/scenarios/morning.js";
import { runScenario } from "../../sandbox/scenarios/run.js";

describe("the morning scenario, end to end with the real handlers", () => {
  it("keeps the serviced group healthy while the group without it loops, then repairs a broken deployment", async () => {
    const lines: string[] = [];
    const { summary } = await runScenario(morning, {
      instances: 2,
      seed: 3,
      onProgress: (line) => lines.push(line),
    });
    expect(summary.checks.filter((check) => !check.ok)).toEqual([]);
    expect(summary).toMatchObject({
      scenario: "morning",
      ok: true,
      instances: 2,
      inService: 2,
      verified: 2,
      abandoned: 0,
      lost: 0,
      lifecycleTimeouts: 0,
      duplicateInstalls: 0,
      launchDeploymentsFailed: 0,
      redeploys: 1,
      redeploysSucceeded: 1,
    });
    expect(summary.withoutService).toMatchObject({
      launchDeploymentsFailed: expect.any(Number),
      inService: 0,
    });
    expect((summary.withoutService as { replaced: number }).replaced).toBeGreaterThanOrEqual(2);
    expect(summary.apiCalls["AutoScaling.CompleteLifecycleAction"]).toBe(2);
    expect(summary.hookToCompleteSeconds.max).toBeGreaterThan(0);
    expect(lines.some((line) => line.includes("InService"))).toBe(true);
  });
});
