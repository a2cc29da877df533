import { describe, expect, it } from "vitest";
import { gbSeconds, gbSecondsPer1000 } from "../../bench/billing.js";
import type { BurstResult } from "../../bench/burst.js";
import { compareEventLoss, EVENT_LOSS_FAULTS } from "../../bench/event-loss.js";
import {
  type OverheadSample,
  type OverheadWorld,
  overheadSamples,
  summarizeOverheads,
} from "../../bench/overhead.js";
import { type BenchReport, evaluateGoals, formatSummary } from "../../bench/report.js";
import { scalingPoint } from "../../bench/run.js";

const SPANS = {
  registrationToInstallSent: 1_000,
  installDelivery: 1_000,
  installEndToVerifySent: 1_000,
  verifyDelivery: 1_000,
  verifyEndToComplete: 1_000,
};

/** A burst result as runBurst returns it, with the figures a test cares about set by hand. */
function burstResult(overrides: Partial<BurstResult> = {}): BurstResult {
  return {
    instances: 200,
    verifiedShare: 1,
    lifecycleTimeouts: 0,
    hookTimeouts: 0,
    lost: 0,
    duplicateInstalls: 0,
    ssmCallsPerInstance: 1.5,
    autoScalingCallsPerInstance: 2,
    throttled: 0,
    hookToCompleteSeconds: { p50: 80, p95: 120, max: 150 },
    overheadP50: 0.1,
    overheadP95: 0.4,
    overheadMeasured: 200,
    idealSecondsP50: 70,
    overheadBreakdownP50: {
      registrationToInstallSent: 1,
      installDelivery: 1,
      installEndToVerifySent: 1,
      verifyDelivery: 1,
      verifyEndToComplete: 1,
    },
    quotaFloor: { p50: 75, p95: 95 },
    overheadOverQuotaFloor: { p50: 0.05, p95: 0.25 },
    launched: 200,
    inService: 200,
    verified: 200,
    replaced: 0,
    launchDeploymentsFailed: 0,
    ssmCalls: 300,
    autoScalingCalls: 400,
    callsByOperation: {
      SSM: { ListCommandInvocations: 120, SendCommand: 100, DescribeInstanceInformation: 80 },
      AutoScaling: { CompleteLifecycleAction: 200, RecordLifecycleActionHeartbeat: 200 },
    },
    throttledByOperation: {},
    ssmCallsByPurpose: {},
    lambdaGbSecondsPer1000: 250,
    launchMemoryMb: 512,
    eventDeliveries: { matched: 600, delivered: 600, dropped: 0, duplicated: 0 },
    launchInvocations: { invocations: 40, errors: 0, timeouts: 0, errorMessages: {} },
    lifecycleTimeoutsByHook: {},
    harm: {
      harm: 0,
      abandonedThatWouldHaveSucceeded: 0,
      agentRestartsDuringDeployments: 0,
      agentRestartsDuringLifecycleEvents: 0,
      forbiddenRedeploys: 0,
      installsOutOfScope: 0,
      agentRestartsBy: {},
    },
    settled: true,
    awsSeconds: 900,
    realSeconds: 30,
    clockScale: 0.2,
    eventLoopDelayP99Seconds: 0.05,
    skippedSeconds: 100,
    ...overrides,
  };
}

describe("Lambda GB-seconds", () => {
  it("sums billed duration times memory over the invocations", () => {
    const invocations = [
      { billedDurationMs: 1_000, memoryMb: 1024 },
      { billedDurationMs: 2_500, memoryMb: 512 },
      { billedDurationMs: 40_000, memoryMb: 128 },
    ];
    // 1 s x 1 GB + 2.5 s x 0.5 GB + 40 s x 0.125 GB
    expect(gbSeconds(invocations)).toBeCloseTo(1 + 1.25 + 5, 9);
    expect(gbSecondsPer1000(invocations, 50)).toBe(145);
  });

  it("gives 0 per 1,000 when nothing launched rather than dividing by zero", () => {
    expect(gbSecondsPer1000([{ billedDurationMs: 1_000, memoryMb: 1024 }], 0)).toBe(0);
    expect(gbSeconds([])).toBe(0);
  });
});

describe("overhead over each instance's floor", () => {
  it("takes the median and the 95th percentile of (actual - floor) / floor", () => {
    // Twenty instances with a 100 s floor, 1 to 20 s over it: ratios 0.01 ... 0.20.
    const samples: OverheadSample[] = Array.from({ length: 20 }, (_, index) => ({
      idealMs: 100_000,
      actualMs: 100_000 + (index + 1) * 1_000,
      spansMs: { ...SPANS, installEndToVerifySent: (index + 1) * 1_000 },
      timeline: { startedAt: 0, registeredAt: 20_000, runMs: 80_000 },
    }));
    const figures = summarizeOverheads(samples);
    expect(figures.overheadP50).toBe(0.105);
    expect(figures.overheadP95).toBe(0.19);
    expect(figures.idealSecondsP50).toBe(100);
    expect(figures.breakdownP50.installEndToVerifySent).toBe(10.5);
    expect(figures.breakdownP50.installDelivery).toBe(1);
    expect(figures.measured).toBe(20);
  });

  it("measures each instance from its own registration, install and verification, and from the install alone without a verification of its own", () => {
    const run = (instanceId: string, kind: "install" | "verify", requestedAt: number, endedAt: number) => ({
      instanceId,
      kind,
      status: "Success" as const,
      requestedAt,
      startedAt: requestedAt + 1_000,
      endedAt,
    });
    const action = (instanceId: string, completedAt: number) => ({
      hookName: "hook",
      instanceId,
      startedAt: 0,
      completed: { result: "CONTINUE" as const, at: completedAt, by: "api" as const },
    });
    const world: OverheadWorld = {
      ssm: {
        invocations: [
          // i-1: registered at 20 s, install 21-51 s (sent at 20), verification 61-71 s (sent at 60).
          run("i-1", "install", 20_000, 51_000),
          run("i-1", "verify", 60_000, 71_000),
          // i-2: registered at 10 s; its install document verifies in its last step: 11-41 s.
          run("i-2", "install", 10_000, 41_000),
        ],
      },
      autoScaling: {
        actions: [
          action("i-1", 80_000),
          action("i-2", 50_000),
          { ...action("i-3", 90_000), hookName: "other" },
        ],
      },
      instances: new Map([
        ["i-1", { milestones: { ssmOnline: 20_000 } }],
        ["i-2", { milestones: { ssmOnline: 10_000 } }],
        ["i-3", { milestones: { ssmOnline: 5_000 } }],
      ]),
    };
    const [first, second, ...others] = overheadSamples(world, "hook", 0);
    expect(others).toEqual([]);
    // Floor: 20 s registration + 30 s install + 10 s verification.
    expect(first).toEqual({
      idealMs: 60_000,
      actualMs: 80_000,
      spansMs: {
        registrationToInstallSent: 0,
        installDelivery: 1_000,
        installEndToVerifySent: 9_000,
        verifyDelivery: 1_000,
        verifyEndToComplete: 9_000,
      },
      timeline: { startedAt: 0, registeredAt: 20_000, runMs: 40_000 },
    });
    // Floor: 10 s registration + 30 s install; the last span runs from the install's end.
    expect(second).toMatchObject({
      idealMs: 40_000,
      actualMs: 50_000,
      spansMs: { installEndToVerifySent: 0, verifyDelivery: 0, verifyEndToComplete: 9_000 },
      timeline: { startedAt: 0, registeredAt: 10_000, runMs: 30_000 },
    });
  });

  it("reports zeros, not NaN, when no instance was let in", () => {
    expect(summarizeOverheads([])).toMatchObject({ overheadP50: 0, overheadP95: 0, measured: 0 });
  });
});

describe("event loss", () => {
  it("takes lost instances and hook timeouts from the lossy run and the cost as its difference from the clean one", () => {
    const clean = burstResult();
    const lossy = burstResult({
      lost: 1,
      hookTimeouts: 2,
      ssmCallsPerInstance: 1.75,
      overheadP50: 0.15,
      overheadP95: 0.9,
      lambdaGbSecondsPer1000: 300,
      eventDeliveries: { matched: 620, delivered: 1178, dropped: 31, duplicated: 589 },
    });
    const loss = compareEventLoss(clean, lossy);
    expect(loss.faults).toEqual(EVENT_LOSS_FAULTS);
    expect(loss.withLoss).toMatchObject({
      instancesLost: 1,
      hookTimeouts: 2,
      eventsDropped: 31,
      eventsDuplicated: 589,
    });
    expect(loss.baseline).toMatchObject({ instancesLost: 0, eventsDropped: 0 });
    // The output contract's summary of the lossy run.
    expect(loss).toMatchObject({
      lossRate: EVENT_LOSS_FAULTS.dropProbability,
      lost: 1,
      ssmCallsPerInstance: 1.75,
      verifiedShare: lossy.verifiedShare,
      lifecycleTimeouts: lossy.lifecycleTimeouts,
    });
    expect(loss.cost).toEqual({
      ssmCallsPerInstance: 0.25,
      autoScalingCallsPerInstance: 0,
      overheadP50: 0.05,
      overheadP95: 0.5,
      lambdaGbSecondsPer1000: 50,
    });
    const goals = evaluateGoals({ ...baseReport(), eventLoss: loss });
    expect(goals.find((goal) => goal.goal.startsWith("event loss"))).toMatchObject({
      met: false,
      value: "1 lost, 2 hook timeouts",
    });
  });
});

describe("scaling points", () => {
  it("are taken from each run's own calls", () => {
    const point = scalingPoint(
      burstResult({
        instances: 100,
        launched: 100,
        ssmCalls: 180,
        ssmCallsPerInstance: 1.8,
        autoScalingCallsPerInstance: 2.2,
        ssmCallsByPurpose: { SendCommand: 100, ListCommandInvocations: 50 },
      }),
    );
    expect(point).toMatchObject({
      instances: 100,
      ssmCalls: 180,
      ssmCallsPerInstance: 1.8,
      autoScalingCallsPerInstance: 2.2,
      ssmCallsAskedPerInstance: 1.5,
    });
  });
});

function baseReport(): Omit<BenchReport, "goals"> {
  return {
    machine: { cpu: "test", cores: 1, node: "v20", platform: "linux-x64" },
    command: "npm run bench",
    rates: {},
    ratesSource: "test",
    clock: { scale: 0.2, note: "clock: test" },
    realSeconds: 1,
  };
}

describe("the report", () => {
  it("puts every new figure in the JSON and in the readable summary", () => {
    const burst = burstResult();
    const eventLoss = compareEventLoss(burst, burstResult({ ssmCallsPerInstance: 1.9 }));
    const partial = { ...baseReport(), burst, eventLoss, scaling: [scalingPoint(burst)] };
    const report: BenchReport = { ...partial, goals: evaluateGoals(partial) };
    const json = JSON.parse(JSON.stringify(report)) as BenchReport;
    expect(json.burst).toMatchObject({
      ssmCallsPerInstance: 1.5,
      autoScalingCallsPerInstance: 2,
      overheadP50: 0.1,
      overheadP95: 0.4,
      lambdaGbSecondsPer1000: 250,
      callsByOperation: { SSM: { SendCommand: 100 } },
      quotaFloor: { p50: 75, p95: 95 },
      overheadOverQuotaFloor: { p50: 0.05, p95: 0.25 },
    });
    expect(json.eventLoss?.cost.ssmCallsPerInstance).toBe(0.4);
    const text = formatSummary(report);
    expect(text).toContain("p50 10%, p95 40%");
    expect(text).toMatch(/overhead over the quota floor\s+p50 5%, p95 25% \(quota floor p50 75 s, p95 95 s/);
    expect(text).toMatch(/Lambda GB-s per 1,000 launches\s+250 /);
    expect(text).toContain("ListCommandInvocations 120; SendCommand 100; DescribeInstanceInformation 80");
    expect(text).toContain(
      "5. Event loss: 200 instances, 5% of EventBridge deliveries dropped, 100% delivered twice",
    );
    expect(text).toContain("SSM calls per instance +0.4");
    expect(text).toMatch(/MET\s+event loss/);
  });
});
