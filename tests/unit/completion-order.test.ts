import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock, setClockScale } from "../../functions/core/common/clock.js";
import { completionRetryMs, completionUrgency } from "../../functions/core/launch/action.js";
import { inTurns } from "../../functions/core/launch/lifecycle.js";
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
    // Among late launches, the latest against its own work goes first, however long the other is held:
    // 30 s of waiting after 10 s of work, before 100 s of waiting after 100 s of work.
    expect(order({ held: launch(200, 100), quick: launch(40, 30) })).toEqual(["quick", "held"]);
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

describe("completions taken in turns", () => {
  // One AWS second passes in ten real milliseconds.
  beforeEach(() => setClockScale(0.01));
  afterEach(() => setClockScale(1));

  it("puts a throttled launch back in line and tries next the one most urgent after its wait", async () => {
    const start = clock.now();
    const tries: string[] = [];
    const answered: string[] = [];
    // The second launch grows urgent while the first try waits out its throttling.
    const urgency: Record<string, () => number> = {
      steady: () => 1,
      growing: () => (tries.length > 0 ? 5 : 0),
    };
    const left = await inTurns(["steady", "growing"], {
      urgency: (item) => urgency[item]!(),
      retryMs: () => 1_000,
      deadline: start + 60_000,
      attempt: async (item) => {
        tries.push(item);
        return tries.length === 1 ? "throttled" : true;
      },
      answered: (item) => answered.push(item),
    });
    expect(tries).toEqual(["steady", "growing", "steady"]);
    expect(answered).toEqual(["growing", "steady"]);
    expect(left).toEqual([]);
  });

  it("answers the launches still in line when the budget runs out, without trying past it", async () => {
    const start = clock.now();
    let tries = 0;
    const left = await inTurns(["a", "b"], {
      urgency: () => 1,
      retryMs: () => 10_000,
      deadline: start + 15_000,
      attempt: async () => {
        tries++;
        return "throttled" as const;
      },
      answered: () => undefined,
    });
    expect(tries).toBe(2);
    expect([...left].sort()).toEqual(["a", "b"]);
  });
});
