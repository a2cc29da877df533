import { describe, expect, it } from "vitest";
import { completionRetryMs, completionUrgency } from "../../functions/core/launch/action.js";
import type { LaunchRecord } from "../../functions/core/launch/records.js";

const SECOND = 1000;
const NOW = 1_000_000 * SECOND;

/** A launch held `heldS` seconds whose install ended `waitedS` seconds ago. */
function launch(heldS: number, waitedS: number): LaunchRecord {
  return {
    startedAt: NOW - heldS * SECOND,
    finishingSince: NOW - waitedS * SECOND,
  } as LaunchRecord;
}

const order = (records: Record<string, LaunchRecord>) =>
  Object.entries(records)
    .sort(([, a], [, b]) => completionUrgency(b, NOW) - completionUrgency(a, NOW))
    .map(([name]) => name);

describe("which throttled completion goes first", () => {
  it("the launch held longest in Pending:Wait, among launches not yet late", () => {
    // Each waited less than 40% of its own work (held minus waited) since its install ended.
    expect(order({ young: launch(60, 10), old: launch(150, 30), middle: launch(100, 5) })).toEqual([
      "old",
      "middle",
      "young",
    ]);
  });

  it("a launch kept waiting past 40% of its own work goes before every launch that is not", () => {
    // 30 s of work, waiting 15 s: late. The other worked 190 s and waited 10 s.
    expect(order({ held: launch(200, 10), late: launch(45, 15) })).toEqual(["late", "held"]);
    // Among late launches, the one held longest goes first.
    expect(order({ late: launch(45, 15), later: launch(90, 40) })).toEqual(["later", "late"]);
  });

  it("a launch held fifteen minutes still yields to a late one", () => {
    expect(order({ hour: launch(900, 1), late: launch(20, 10) })).toEqual(["late", "hour"]);
  });

  it("tries again sooner the more urgent it is, within a bounded range", () => {
    const delays = (record: LaunchRecord) =>
      Array.from({ length: 200 }, () => completionRetryMs(record, NOW));
    const young = delays(launch(45, 1));
    const late = delays(launch(45, 20));
    expect(Math.max(...late)).toBeLessThan(Math.min(...young));
    // Never sooner than a tenth of a second, never later than nine seconds.
    for (const delay of [...young, ...late]) {
      expect(delay).toBeGreaterThan(100);
      expect(delay).toBeLessThanOrEqual(9 * SECOND);
    }
  });
});
