import type { RateLimit } from "../sandbox/server/traffic.js";
import type { BurstResult } from "./burst.js";
import type { ColdStartRow } from "./cold-start.js";
import type { EventLoss } from "./event-loss.js";
import type { Comparison, ScalingPoint, SideBySide } from "./figures.js";
import {
  formatBurst,
  formatEventLoss,
  formatScaling,
  formatSideBySide,
  harmLine,
  percent,
  table,
} from "./report-sections.js";
import type { Alternative, AlternativeResult } from "./side-by-side.js";

export type { Comparison, Ratios, ScalingPoint, SideBySide } from "./figures.js";

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
  /** The burst with EventBridge deliveries dropped and repeated, beside the same burst without. */
  eventLoss?: EventLoss;
  goals: Goal[];
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

export function evaluateGoals(report: Omit<BenchReport, "goals">): Goal[] {
  const goals: Goal[] = [];
  const { burst, sideBySide, coldStart, coldStartBaseline, scaling, eventLoss } = report;
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
        goal: "burst: SSM calls per instance <= 0.5",
        value: String(burst.ssmCallsPerInstance),
        met: burst.ssmCallsPerInstance <= 0.5,
      },
      {
        goal: "burst: Auto Scaling calls per instance <= 1.2",
        value: String(burst.autoScalingCallsPerInstance),
        met: burst.autoScalingCallsPerInstance <= 1.2,
      },
      {
        goal: "burst: overhead p50 <= 10%",
        value: percent(burst.overheadP50),
        met: burst.overheadP50 <= 0.1,
      },
      {
        goal: "burst: overhead p95 <= 20%",
        value: percent(burst.overheadP95),
        met: burst.overheadP95 <= 0.2,
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
  if (eventLoss) {
    const { withLoss } = eventLoss;
    goals.push({
      goal: `event loss (${percent(eventLoss.faults.dropProbability ?? 0)} dropped, ${percent(eventLoss.faults.duplicateProbability ?? 0)} repeated): no instance lost, no hook timeout`,
      value: `${withLoss.instancesLost} lost, ${withLoss.hookTimeouts} hook timeouts`,
      met: withLoss.instancesLost === 0 && withLoss.hookTimeouts === 0,
    });
  }
  return goals;
}

/** The readable summary printed before the JSON line. */
export function formatSummary(report: BenchReport): string {
  const lines: string[] = [];
  const { machine, burst, sideBySide, coldStart, coldStartBaseline, scaling, eventLoss } = report;
  lines.push("agentfix benchmark");
  lines.push(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node} (${machine.platform})`);
  lines.push(`throttling (token bucket per operation, ${report.ratesSource})`);
  for (const [operation, limit] of Object.entries(report.rates)) {
    lines.push(`  ${operation.padEnd(16)} ${limit.rate}/s sustained, burst ${limit.burst}`);
  }
  lines.push(report.clock.note);

  if (burst) lines.push(...formatBurst(burst));
  if (sideBySide) lines.push(...formatSideBySide(sideBySide));

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

  if (scaling) lines.push(...formatScaling(scaling));
  if (eventLoss) lines.push(...formatEventLoss(eventLoss));

  lines.push("");
  lines.push("Goals");
  for (const goal of report.goals)
    lines.push(`  ${goal.met ? "MET   " : "MISSED"}  ${goal.goal}: ${goal.value}`);
  lines.push("");
  lines.push(`${report.realSeconds} s in all on this machine. Reproduce: ${report.command}`);
  return lines.join("\n");
}
