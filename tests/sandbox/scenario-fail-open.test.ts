import { describe, expect, it } from "vitest";
import { type FailOpenCase, failOpen } from "../../sandbox/scenarios/fail-open.js";
import { runScenario } from "../../sandbox/scenarios/run.js";

/** A fault that is not the instance's own never costs the fleet capacity, case by case. */
describe("the fail-open scenario, end to end with the real handlers", () => {
  it("ends every case no worse than the same fleet without the service, and does no harm", async () => {
    const { summary } = await runScenario(failOpen, { seed: 1, instances: 4 });
    const cases = summary.cases as Omit<FailOpenCase, "ok" | "detail">[];
    expect(cases.map((c) => c.name)).toEqual([
      "personal stage beside prod",
      "release day",
      "Distributor down for 30 minutes",
      "2.x package missing: deploy refused",
      "package gone after deploy",
      "instances that never register",
      "group removed while its launches wait",
    ]);
    for (const c of cases) {
      expect(c, c.name).toMatchObject({ harm: 0, abandonedByOurHook: 0 });
      expect(c.inServiceShare, c.name).toBeGreaterThanOrEqual(c.inServiceShareWithout);
      expect(c.failedLaunchDeployments, c.name).toBeLessThanOrEqual(c.failedLaunchDeploymentsWithout);
    }
    // The outage costs launch deployments on both sides alike (no agent can be installed), none more.
    const outage = cases.find((c) => c.name.startsWith("Distributor down"))!;
    expect(outage.failedLaunchDeploymentsWithout).toBeGreaterThan(0);
    expect(summary.checks.filter((check) => !check.ok)).toEqual([]);
    expect(summary.harm.harm).toBe(0);
    expect(summary.ok).toBe(true);
  }, 300_000);
});
