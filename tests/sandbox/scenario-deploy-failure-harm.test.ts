import { describe, expect, it } from "vitest";
import { deployFailureHarm } from "../../sandbox/scenarios/deploy-failure-harm.js";
import { runScenario } from "../../sandbox/scenarios/run.js";

describe("the deploy-failure-harm scenario, end to end with the real handlers", () => {
  it("upgrades what OneAtATime skipped, leaves blue/green and rollbacks alone, waits out a busy group, keeps an SSM refusal to its instance, and does no harm", async () => {
    const { summary } = await runScenario(deployFailureHarm, { seed: 5 });
    expect(summary.checks.filter((check) => !check.ok)).toEqual([]);
    expect(summary.codeDeployHarm).toMatchObject({
      blueGreenRedeploys: 0,
      redeploysAgainstRollback: 0,
      agentRestartsUnderDeployment: 0,
      total: 0,
    });
    expect(summary.ok).toBe(true);
  });
});
