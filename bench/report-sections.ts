import type { BurstResult } from "./burst.js";
import type { EventLoss, EventLossRun } from "./event-loss.js";
import type { ScalingPoint, SideBySide } from "./figures.js";
import type { Alternative, AlternativeResult } from "./side-by-side.js";

/** The readable sections of the summary `npm run bench` prints, one function per part. */

export const percent = (value: number) => `${Math.round(value * 1000) / 10}%`;

export function formatBurst(burst: BurstResult): string[] {
  const lines: string[] = [];
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
      ["  by API", listed(burst.callsByOperation.SSM)],
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
        "overhead over the floor",
        `p50 ${percent(burst.overheadP50)}, p95 ${percent(burst.overheadP95)} (floor p50 ${burst.idealSecondsP50} s, ${burst.overheadMeasured} instances)`,
      ],
      [
        "overhead over the quota floor",
        `p50 ${percent(burst.overheadOverQuotaFloor.p50)}, p95 ${percent(burst.overheadOverQuotaFloor.p95)} (quota floor p50 ${burst.quotaFloor.p50} s, p95 ${burst.quotaFloor.p95} s: the floor under the API rates)`,
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
      [
        "Lambda GB-s per 1,000 launches",
        `${burst.lambdaGbSecondsPer1000} (launch function, ${burst.launchMemoryMb} MB, billed duration in AWS time)`,
      ],
      ["harm", harmLine(burst.harm)],
      ["run", runLine(burst)],
    ]),
  );
  lines.push("   SSM calls by purpose (as asked, before SDK retries):");
  for (const [purpose, count] of Object.entries(burst.ssmCallsByPurpose)) {
    lines.push(`     ${String(count).padStart(6)}  ${purpose}`);
  }
  return lines;
}

export function formatSideBySide(sideBySide: SideBySide): string[] {
  const lines: string[] = [];
  const { faults } = sideBySide;
  lines.push("");
  lines.push(
    `2. Side by side: ${sideBySide.instances} instances, seed ${sideBySide.seed}, the same faults for all: ` +
      `${percent(faults.installFails)} of installs fail, ${percent(faults.installSucceedsWithoutAgent)} report Success with no running agent, ` +
      `${percent(faults.bakedOutdatedAgentShare)} of launches from an AMI with agent ${faults.bakedAgentVersion} baked in`,
  );
  for (const comparison of sideBySide.byAgentWait) {
    const { associationOnly: a, perInstancePolling: b, service: c, servicePolling: d } = comparison;
    lines.push(`   CodeDeploy waits ${comparison.agentWaitSeconds} s for an absent agent:`);
    lines.push(
      ...table(
        [
          [
            "",
            "(a) association only",
            "(b) per-instance polling",
            "(c) service, events",
            "(d) service, polling",
          ],
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
              ["Auto Scaling calls per instance", (r) => String(r.autoScalingCallsPerInstance)],
              ["overhead over the floor p50 / p95", (r) => overheadCell(r.overheadP50, r.overheadP95)],
              ["Lambda GB-s per 1,000 launches", (r) => String(r.lambdaGbSecondsPer1000 ?? "no function")],
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
              ["AWS s (real s)", (r) => `${r.awsSeconds} (${r.realSeconds})${r.settled ? "" : " unsettled"}`],
            ] as [string, (r: AlternativeResult) => string][]
          ).map(([label, cell]) => [label, cell(a), cell(b), cell(c), cell(d)]),
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
    for (const result of [a, b, c, d]) {
      const causes = Object.entries(result.launchDeploymentFailures);
      lines.push(
        `     why launch deployments failed, ${label(result.alternative)}:${causes.length === 0 ? " none failed" : ""}`,
      );
      for (const [cause, count] of causes.sort((x, y) => y[1] - x[1]))
        lines.push(`       ${String(count).padStart(5)}  ${cause}`);
    }
  }
  return lines;
}

export function formatScaling(scaling: ScalingPoint[]): string[] {
  const lines: string[] = [];
  lines.push("");
  lines.push("4. Scaling");
  lines.push(
    ...table([
      [
        "instances",
        "SSM calls",
        "per instance",
        "as asked",
        "Auto Scaling per instance",
        "hook to complete p50 / p95 (AWS s)",
      ],
      ...scaling.map((point) => [
        String(point.instances),
        String(point.ssmCalls),
        String(point.ssmCallsPerInstance),
        String(point.ssmCallsAskedPerInstance),
        String(point.autoScalingCallsPerInstance),
        `${point.p50Seconds} / ${point.p95Seconds}`,
      ]),
    ]),
  );
  return lines;
}

export function formatEventLoss(eventLoss: EventLoss): string[] {
  const { faults, baseline, withLoss, cost } = eventLoss;
  const cell = (run: EventLossRun) => [
    `${run.instancesLost}`,
    `${run.hookTimeouts}`,
    overheadCell(run.overheadP50, run.overheadP95),
    `${run.ssmCallsPerInstance}`,
    `${run.autoScalingCallsPerInstance}`,
    `${run.lambdaGbSecondsPer1000}`,
    `${run.eventsDropped} / ${run.eventsDuplicated}`,
    `${run.awsSeconds}${run.settled ? "" : " unsettled"}`,
  ];
  const headers = [
    "instances lost",
    "hook timeouts",
    "overhead p50 / p95",
    "SSM calls per instance",
    "Auto Scaling calls per instance",
    "Lambda GB-s per 1,000",
    "events dropped / repeated",
    "AWS s",
  ];
  const clean = cell(baseline);
  const lossy = cell(withLoss);
  return [
    "",
    `5. Event loss: ${eventLoss.instances} instances, ${percent(faults.dropProbability ?? 0)} of EventBridge deliveries dropped, ` +
      `${percent(faults.duplicateProbability ?? 0)} delivered twice (every rule: launch and SSM events)`,
    ...table([
      ["", "clean delivery", "lossy delivery"],
      ...headers.map((header, index) => [header, clean[index]!, lossy[index]!]),
    ]),
    `   cost of the fallback: SSM calls per instance ${signed(cost.ssmCallsPerInstance)}, Auto Scaling ${signed(cost.autoScalingCallsPerInstance)}, ` +
      `overhead p50 ${signed(cost.overheadP50 * 100)} points, p95 ${signed(cost.overheadP95 * 100)} points, GB-s per 1,000 ${signed(cost.lambdaGbSecondsPer1000)}`,
  ];
}

function overheadCell(p50: number | null, p95: number | null): string {
  return p50 === null || p95 === null ? "n/a" : `${percent(p50)} / ${percent(p95)}`;
}

function signed(value: number): string {
  const rounded = Math.round(value * 100) / 100;
  return rounded > 0 ? `+${rounded}` : String(rounded);
}

export function harmLine(harm: AlternativeResult["harm"]): string {
  return `${harm.harm} (agent restarts under a deployment ${harm.agentRestartsDuringDeployments}, ready launches abandoned ${harm.abandonedThatWouldHaveSucceeded}, forbidden redeploys ${harm.forbiddenRedeploys}, installs out of scope ${harm.installsOutOfScope})`;
}

function label(alternative: Alternative): string {
  return { associationOnly: "(a)", perInstancePolling: "(b)", service: "(c)", servicePolling: "(d)" }[
    alternative
  ];
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

function listed(table: Record<string, number>): string {
  return Object.entries(table)
    .map(([key, count]) => `${key} ${count}`)
    .join("; ");
}

function compact(table: Record<string, number>): string {
  const entries = listed(table);
  return entries ? `(${entries})` : "";
}

export function table(rows: string[][], indent = "   "): string[] {
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
