import type { RateLimit } from "../sandbox/server/traffic.js";
import type { BurstResult } from "./burst.js";
import type { ColdStartRow } from "./cold-start.js";
import type { Alternative, AlternativeResult, FaultModel } from "./side-by-side.js";

/** What `npm run bench -- --json` prints as its last line. */
export interface BenchReport {
  machine: { cpu: string; cores: number; node: string; platform: string };
  command: string;
  rates: Record<string, RateLimit>;
  ratesSource: string;
  /** How AWS time was run: the clock scale and the skipping of idle time. */
  clock: { scale: number; note: string };
  burst?: BurstResult;
  sideBySide?: SideBySide;
  coldStart?: ColdStartRow[];
  coldStartBaseline?: ColdStartRow;
  scaling?: ScalingPoint[];
  goals: Goal[];
  realSeconds: number;
}

export type Comparison = Record<Alternative, AlternativeResult> & {
  agentWaitSeconds: number;
  ratios: Ratios;
};

export interface SideBySide extends Comparison {
  instances: number;
  seed: number | string;
  faults: FaultModel;
  /** The same comparison under each of CodeDeploy's documented waits for an absent agent. */
  byAgentWait: Comparison[];
}

export interface Ratios {
  /** SSM calls per instance, per-instance polling over this service. */
  ssmCallsPerInstancePollingOverService: number | null;
  /** The same, counting only calls about instances still alive (as asked, before SDK retries). */
  ssmCallsPerInstanceOnLiveInstancesPollingOverService: number | null;
  /** Share of failed launch deployments, association only over this service (null when the service had none). */
  launchDeploymentsFailedAssociationOverService: number | null;
  /** Instances replaced, association only over this service. */
  replacedAssociationOverService: number | null;
}

export interface ScalingPoint {
  instances: number;
  ssmCalls: number;
  ssmCallsPerInstance: number;
  /** As the callers asked for them, before the SDK's retries of throttled calls. */
  ssmCallsAskedPerInstance: number;
  p95Seconds: number;
  p50Seconds: number;
  awsSeconds: number;
  realSeconds: number;
}

export interface Goal {
  goal: string;
  value: string;
  met: boolean;
}

export const MAX_BUNDLE_BYTES = 1_000_000;

export function ratio(numerator: number, denominator: number): number | null {
  return denominator > 0 ? Math.round((numerator / denominator) * 10) / 10 : null;
}

export function compare(
  results: Record<Alternative, AlternativeResult>,
  agentWaitSeconds: number,
): Comparison {
  const { associationOnly, perInstancePolling, service } = results;
  return {
    agentWaitSeconds,
    ...results,
    ratios: {
      ssmCallsPerInstancePollingOverService: ratio(
        perInstancePolling.ssmCallsPerInstance,
        service.ssmCallsPerInstance,
      ),
      ssmCallsPerInstanceOnLiveInstancesPollingOverService: ratio(
        perInstancePolling.ssmCallsPerInstanceOnLiveInstances,
        service.ssmCallsPerInstanceOnLiveInstances,
      ),
      launchDeploymentsFailedAssociationOverService: ratio(
        associationOnly.launchDeploymentsFailedShare,
        service.launchDeploymentsFailedShare,
      ),
      replacedAssociationOverService: ratio(associationOnly.replaced, service.replaced),
    },
  };
}

const percent = (value: number) => `${Math.round(value * 1000) / 10}%`;

export function evaluateGoals(report: Omit<BenchReport, "goals">): Goal[] {
  const goals: Goal[] = [];
  const { burst, sideBySide, coldStart, coldStartBaseline, scaling } = report;
  if (burst) {
    goals.push(
      {
        goal: "burst: verified share 100%",
        value: percent(burst.verifiedShare),
        met: burst.verifiedShare === 1,
      },
      {
        goal: "burst: lifecycle heartbeat timeouts 0",
        value: String(burst.lifecycleTimeouts),
        met: burst.lifecycleTimeouts === 0,
      },
      {
        goal: "burst: duplicate installs 0",
        value: String(burst.duplicateInstalls),
        met: burst.duplicateInstalls === 0,
      },
      {
        goal: "burst: SSM calls per instance <= 1.0",
        value: String(burst.ssmCallsPerInstance),
        met: burst.ssmCallsPerInstance <= 1,
      },
      {
        goal: "burst: Auto Scaling calls per instance <= 1.5",
        value: String(burst.autoScalingCallsPerInstance),
        met: burst.autoScalingCallsPerInstance <= 1.5,
      },
      {
        goal: "burst: overhead p50 <= 10%",
        value: percent(burst.overheadP50),
        met: burst.overheadP50 <= 0.1,
      },
      {
        goal: "burst: harm 0",
        value: harmLine(burst.harm),
        met: burst.harm.harm === 0,
      },
    );
  }
  if (sideBySide) {
    for (const comparison of sideBySide.byAgentWait) {
      const { service } = comparison;
      goals.push({
        goal: `side by side (agent wait ${comparison.agentWaitSeconds} s): the service's harm 0, and no failed launch deployment caused by it`,
        value: `${harmLine(service.harm)}; ${service.launchDeploymentFailuresCausedByIt} failed launch deployments caused by it`,
        met: service.harm.harm === 0 && service.launchDeploymentFailuresCausedByIt === 0,
      });
      const value = comparison.ratios.ssmCallsPerInstancePollingOverService;
      goals.push({
        goal: `side by side (agent wait ${comparison.agentWaitSeconds} s): SSM calls per instance, per-instance polling / service >= 5`,
        value: value === null ? "n/a" : `${value}x`,
        met: value !== null && value >= 5,
      });
    }
  }
  if (coldStart && coldStartBaseline) {
    for (const row of coldStart) {
      goals.push(
        {
          goal: `cold start: ${row.function} bundle <= 1 MB`,
          value: `${Math.round(row.bundleBytes / 1000)} kB`,
          met: row.bundleBytes <= MAX_BUNDLE_BYTES,
        },
        {
          goal: `cold start: ${row.function} init <= 2x a bare SSM handler`,
          value: `${row.initRatio}x`,
          met: row.initRatio <= 2,
        },
      );
    }
  }
  if (scaling && scaling.length > 1) {
    const sorted = [...scaling].sort((a, b) => a.instances - b.instances);
    // Noise of a tenth is allowed between fleet sizes; a rise beyond it is growth.
    const rising = sorted.some(
      (point, index) => index > 0 && point.ssmCallsPerInstance > sorted[index - 1]!.ssmCallsPerInstance * 1.1,
    );
    goals.push({
      goal: "scaling: SSM calls per instance do not rise with fleet size",
      value: sorted.map((point) => `${point.instances}: ${point.ssmCallsPerInstance}`).join(", "),
      met: !rising,
    });
  }
  return goals;
}

/** The readable summary printed before the JSON line. */
export function formatSummary(report: BenchReport): string {
  const lines: string[] = [];
  const { machine, burst, sideBySide, coldStart, coldStartBaseline, scaling } = report;
  lines.push("agentfix benchmark");
  lines.push(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node} (${machine.platform})`);
  lines.push(`throttling (token bucket per operation, ${report.ratesSource})`);
  for (const [operation, limit] of Object.entries(report.rates)) {
    lines.push(`  ${operation.padEnd(16)} ${limit.rate}/s sustained, burst ${limit.burst}`);
  }
  lines.push(report.clock.note);

  if (burst) {
    lines.push("");
    lines.push(`1. Burst: ${burst.instances} instances launched at once into one group`);
    lines.push(
      ...table([
        ["verified share", percent(burst.verifiedShare)],
        [
          "lifecycle heartbeat timeouts",
          `${burst.lifecycleTimeouts}${prefixed(compact(burst.lifecycleTimeoutsByHook))}`,
        ],
        ["instances replaced", String(burst.replaced)],
        ["duplicate installs", String(burst.duplicateInstalls)],
        ["SSM calls per instance", `${burst.ssmCallsPerInstance} (${burst.ssmCalls} calls)`],
        [
          "Auto Scaling calls per instance",
          `${burst.autoScalingCallsPerInstance} (${burst.autoScalingCalls} calls)`,
        ],
        ["throttled calls", `${burst.throttled}${prefixed(compact(burst.throttledByOperation))}`],
        [
          "hook to complete (AWS s)",
          `p50 ${burst.hookToCompleteSeconds.p50}, p95 ${burst.hookToCompleteSeconds.p95}, max ${burst.hookToCompleteSeconds.max}`,
        ],
        [
          "overhead over the ideal, p50",
          `${percent(burst.overheadP50)} (ideal p50 ${burst.idealSecondsP50} s)`,
        ],
        [
          "  where it goes (p50, AWS s)",
          `registered -> install sent ${burst.overheadBreakdownP50.registrationToInstallSent}, ` +
            `install delivered ${burst.overheadBreakdownP50.installDelivery}, ` +
            `install ended -> verify sent ${burst.overheadBreakdownP50.installEndToVerifySent}, ` +
            `verify delivered ${burst.overheadBreakdownP50.verifyDelivery}, ` +
            `verify ended -> completed ${burst.overheadBreakdownP50.verifyEndToComplete}`,
        ],
        [
          "launch invocations",
          `${burst.launchInvocations.invocations}, ${burst.launchInvocations.errors} failed${prefixed(compact(burst.launchInvocations.errorMessages))}, ${burst.launchInvocations.timeouts} timed out`,
        ],
        ["harm", harmLine(burst.harm)],
        ["run", runLine(burst)],
      ]),
    );
    lines.push("   SSM calls by purpose (as asked, before SDK retries):");
    for (const [purpose, count] of Object.entries(burst.ssmCallsByPurpose)) {
      lines.push(`     ${String(count).padStart(6)}  ${purpose}`);
    }
  }

  if (sideBySide) {
    const { faults } = sideBySide;
    lines.push("");
    lines.push(
      `2. Side by side: ${sideBySide.instances} instances, seed ${sideBySide.seed}, the same faults for all: ` +
        `${percent(faults.installFails)} of installs fail, ${percent(faults.installSucceedsWithoutAgent)} report Success with no running agent, ` +
        `${percent(faults.bakedOutdatedAgentShare)} of launches from an AMI with agent ${faults.bakedAgentVersion} baked in`,
    );
    for (const comparison of sideBySide.byAgentWait) {
      const { associationOnly: a, perInstancePolling: b, service: c } = comparison;
      lines.push(`   CodeDeploy waits ${comparison.agentWaitSeconds} s for an absent agent:`);
      lines.push(
        ...table(
          [
            ["", "(a) association only", "(b) per-instance polling", "(c) this service"],
            ...(
              [
                [
                  "launch deployments failed",
                  (r) =>
                    `${r.launchDeploymentsFailed}/${r.launchDeployments} (${percent(r.launchDeploymentsFailedShare)})`,
                ],
                ["instances replaced", (r) => String(r.replaced)],
                ["SSM calls per instance", (r) => String(r.ssmCallsPerInstance)],
                ["  on live instances, as asked", (r) => String(r.ssmCallsPerInstanceOnLiveInstances)],
                ["throttled calls", (r) => String(r.throttled)],
                [
                  "hook timeouts",
                  (r) => (r.alternative === "associationOnly" ? "no hook" : String(r.hookTimeouts)),
                ],
                ["duplicate installs", (r) => String(r.duplicateInstalls)],
                ["failed launch deployments it caused", (r) => String(r.launchDeploymentFailuresCausedByIt)],
                ["harm", (r) => String(r.harm.harm)],
                [
                  "  agent restarts under a deployment",
                  (r) =>
                    `${r.harm.agentRestartsDuringDeployments} (${r.harm.agentRestartsDuringLifecycleEvents} during an event)`,
                ],
                [
                  "  ready launches abandoned by its hook",
                  (r) =>
                    r.alternative === "associationOnly"
                      ? "no hook"
                      : String(r.harm.abandonedThatWouldHaveSucceeded),
                ],
                ["in service, current agent", (r) => `${r.inServiceWithCurrentAgent}/${r.instances}`],
                [
                  "AWS s (real s)",
                  (r) => `${r.awsSeconds} (${r.realSeconds})${r.settled ? "" : " unsettled"}`,
                ],
              ] as [string, (r: AlternativeResult) => string][]
            ).map(([label, cell]) => [label, cell(a), cell(b), cell(c)]),
          ],
          "     ",
        ),
      );
      const { ratios } = comparison;
      lines.push(
        `     ratios: SSM calls per instance b/c ${ratios.ssmCallsPerInstancePollingOverService ?? "n/a"}x ` +
          `(${ratios.ssmCallsPerInstanceOnLiveInstancesPollingOverService ?? "n/a"}x on live instances only); ` +
          `failed launch deployments a/c ${ratios.launchDeploymentsFailedAssociationOverService ?? "n/a (c had none)"}x; ` +
          `replaced a/c ${ratios.replacedAssociationOverService ?? "n/a"}x`,
      );
      for (const result of [a, b, c]) {
        const causes = Object.entries(result.launchDeploymentFailures);
        lines.push(
          `     why launch deployments failed, ${label(result.alternative)}:${causes.length === 0 ? " none failed" : ""}`,
        );
        for (const [cause, count] of causes.sort((x, y) => y[1] - x[1]))
          lines.push(`       ${String(count).padStart(5)}  ${cause}`);
      }
    }
  }

  if (coldStart && coldStartBaseline) {
    lines.push("");
    lines.push("3. Cold start (esbuild as SST builds it, minified; init = median of fresh node imports)");
    lines.push(
      ...table([
        ["function", "bundle", "init", "ratio to bare"],
        ...[coldStartBaseline, ...coldStart].map((row) => [
          row.function === "bare" ? "bare (client-ssm only)" : row.function,
          `${Math.round(row.bundleBytes / 1000)} kB`,
          `${row.initMs} ms`,
          `${row.initRatio}x`,
        ]),
      ]),
    );
  }

  if (scaling) {
    lines.push("");
    lines.push("4. Scaling");
    lines.push(
      ...table([
        ["instances", "SSM calls", "per instance", "as asked", "hook to complete p50 / p95 (AWS s)"],
        ...scaling.map((point) => [
          String(point.instances),
          String(point.ssmCalls),
          String(point.ssmCallsPerInstance),
          String(point.ssmCallsAskedPerInstance),
          `${point.p50Seconds} / ${point.p95Seconds}`,
        ]),
      ]),
    );
  }

  lines.push("");
  lines.push("Goals");
  for (const goal of report.goals)
    lines.push(`  ${goal.met ? "MET   " : "MISSED"}  ${goal.goal}: ${goal.value}`);
  lines.push("");
  lines.push(`${report.realSeconds} s in all on this machine. Reproduce: ${report.command}`);
  return lines.join("\n");
}

function harmLine(harm: AlternativeResult["harm"]): string {
  return `${harm.harm} (agent restarts under a deployment ${harm.agentRestartsDuringDeployments}, ready launches abandoned ${harm.abandonedThatWouldHaveSucceeded}, forbidden redeploys ${harm.forbiddenRedeploys}, installs out of scope ${harm.installsOutOfScope})`;
}

function label(alternative: Alternative): string {
  return { associationOnly: "(a)", perInstancePolling: "(b)", service: "(c)" }[alternative];
}

function runLine(run: {
  awsSeconds: number;
  realSeconds: number;
  skippedSeconds: number;
  eventLoopDelayP99Seconds: number;
  settled: boolean;
}): string {
  return `${run.awsSeconds} AWS s (${run.skippedSeconds} skipped idle) in ${run.realSeconds} real s; event-loop delay p99 ${run.eventLoopDelayP99Seconds} AWS s${run.settled ? "" : "; NOT SETTLED"}`;
}

function prefixed(text: string): string {
  return text ? ` ${text}` : "";
}

function compact(table: Record<string, number>): string {
  const entries = Object.entries(table);
  return entries.length === 0 ? "" : `(${entries.map(([key, count]) => `${key} ${count}`).join("; ")})`;
}

function table(rows: string[][], indent = "   "): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]! + 2)))
        .join("")
        .trimEnd(),
  );
}
