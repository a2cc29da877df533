import { describe, expect, it } from "vitest";
import { deployFailure } from "../../sandbox/scenarios/deploy-failure.js";
import { runScenario } from "../../sandbox/scenarios/run.js";

describe("the deploy-failure scenario, end to end with the real handlers", () => {
  it("redeploys after an agent failure, not after an application failure, and never beyond the cap", async () => {
    const { summary } = await runScenario(deployFailure, { seed: 5 });
    expect(summary.checks.filter((check) => !check.ok)).toEqual([]);
    expect(summary.ok).toBe(true);
    const deployments = summary.deployments as Record<
      string,
      { status: string; redeploys: { status: string }[] }
    >;
    expect(deployments.api!.redeploys).toEqual([expect.objectContaining({ status: "Succeeded" })]);
    expect(deployments.batch!.redeploys).toEqual([]);
    expect(deployments.reports!.redeploys.length).toBeLessThanOrEqual(summary.maxRedeploys as number);
    expect(summary.redeploysSucceeded).toBe(1);
    expect(summary.codeDeployHarm).toMatchObject({ total: 0 });
    expect(summary.harm).toMatchObject({ harm: 0, items: [] });
  });
});
