import { describe, expect, it } from "vitest";
import { burst } from "../../sandbox/scenarios/burst.js";
import { chaos } from "../../sandbox/scenarios/chaos.js";
import { runScenario } from "../../sandbox/scenarios/run.js";
import { HARM_CHECK, isKnownGapRestart } from "./helpers.js";

describe("the burst and chaos scenarios at small size", () => {
  it("brings a throttled burst into service with verified agents and reports calls per instance", async () => {
    const { summary } = await runScenario(burst, { instances: 10, seed: 2 });
    expect(summary.checks.filter((check) => !check.ok)).toEqual([]);
    expect(summary).toMatchObject({
      instances: 10,
      inService: 10,
      verified: 10,
      lost: 0,
      duplicateInstalls: 0,
    });
    expect(summary.ssmCallsPerInstance).toBeGreaterThan(0);
    expect(summary.rates).toBeDefined();
  });

  it("loses nothing under faults", async () => {
    const { summary } = await runScenario(chaos, { instances: 6, seed: 4 });
    // The launch path's known gap restart (helpers.ts) may fail the harm check; nothing else may.
    const known = summary.harm.items.length > 0 && summary.harm.items.every(isKnownGapRestart);
    expect(summary.checks.filter((check) => !check.ok && !(known && HARM_CHECK.test(check.name)))).toEqual(
      [],
    );
    expect(summary).toMatchObject({ lost: 0, duplicateInstalls: 0, waitingActions: 0 });
    expect((summary.events as { duplicated: number }).duplicated).toBeGreaterThan(0);
  });
});
