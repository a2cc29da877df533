import { describeAvoidable } from "./recovery.js";
import type { ScenarioResult } from "./run.js";

function pad(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd(),
  );
}

/** The do-no-harm figures: the harm done (0 when none) and how the stages kept to the rules. */
function harmLines(summary: ScenarioResult["summary"]): string[] {
  const { harm, care } = summary;
  const reports = Object.entries(care.bakedAgentReports);
  return [
    `do no harm: harm ${harm.harm} · launches abandoned that would have succeeded ${harm.abandonedThatWouldHaveSucceeded} · agent restarts during a deployment ${harm.agentRestartsDuringDeployments} · forbidden redeploys ${harm.forbiddenRedeploys} · installs out of scope ${harm.installsOutOfScope}`,
    `  instances touched by two stages ${care.instancesTouchedByTwoStages} · given two agent versions ${care.instancesGivenTwoAgentVersions} · installs after our own hook let go ${care.installsAfterOwnHook} · held by another hook, left alone ${care.leftAloneForAnotherHook} (sweeps found ${care.sweepFoundHeldByCodeDeploy})`,
    `  leaving a warm pool: ${care.leavingWarmPool.instances} instances, ${care.leavingWarmPool.checks} checks, ${care.leavingWarmPool.installs} installs (${care.leavingWarmPool.needlessInstalls} needless) · other teams' installs followed ${care.otherTeamsInstallsFollowed} · AMIs baking an outdated agent: ${reports.length === 0 ? "none reported" : reports.map(([ami, count]) => `${ami} x${count}`).join(", ")}`,
    ...harm.items.slice(0, 10).map((item) => `  HARM ${item.kind}: ${item.detail}`),
  ];
}

/** Launch to a verified agent, recovery from each fault kind, and the launch deployments the service could have saved. */
function recoveryLines(summary: ScenarioResult["summary"]): string[] {
  const verified = summary.timeToVerifiedSeconds;
  const share = summary.serviceShareOfTimeToVerifiedSeconds;
  const show = (value: number | null) => (value === null ? "-" : String(value));
  const kinds = Object.entries(summary.recoverySeconds).map(
    ([kind, figure]) =>
      `${kind} ${figure.recovered}/${figure.hit} recovered, resumed after p50 ${show(figure.resumed.p50)} · max ${show(figure.resumed.max)}, to CONTINUE p50 ${show(figure.p50)} · max ${show(figure.max)}`,
  );
  return [
    `launch to verified agent (AWS s): p50 ${show(verified.p50)} · p95 ${show(verified.p95)} · p99 ${show(verified.p99)}; the service's share (less registration and install runs): p50 ${show(share.p50)} · p95 ${show(share.p95)} · p99 ${show(share.p99)}`,
    `recovery (AWS s): ${kinds.join("; ")}`,
    `avoidable launch deployment failures ${summary.avoidableLaunchDeploymentFailures}${describeAvoidable(summary.avoidableLaunchDeploymentFailureInstances, 5)}`,
  ];
}

/**
 * The summary printed at the end of a run: groups (and the stage whose service has each in scope),
 * deployments, figures, the do-no-harm figures and checks.
 */
export function formatSummary(
  result: ScenarioResult,
  serviceGroups: Readonly<Record<string, string>>,
): string {
  const { summary, sandbox, startedAt } = result;
  const { world } = sandbox;
  const lines: string[] = [];
  lines.push(
    `Summary: ${summary.scenario} (seed ${summary.seed}, ${summary.instances} instances per group, ${summary.awsSeconds} AWS seconds in ${summary.realSeconds} s)`,
    "",
  );
  const groupRows = [
    [
      "group",
      "service (stage)",
      "launched",
      "in service",
      "verified agent",
      "replaced",
      "launch deployments ok/failed",
      "warm pool",
    ],
  ];
  for (const group of world.autoScaling.groups.values()) {
    const instances = [...world.instances.values()].filter((instance) => instance.groupName === group.name);
    const fresh = instances.filter((instance) => instance.launchedAt >= startedAt);
    const deployments = [...world.codeDeploy.deployments.values()].filter(
      (deployment) =>
        deployment.creator === "autoscaling" &&
        world.codeDeploy.groups
          .get(`${deployment.applicationName}/${deployment.deploymentGroupName}`)
          ?.autoScalingGroups.includes(group.name),
    );
    groupRows.push([
      group.name,
      serviceGroups[group.name] ?? "no",
      `${fresh.length}${instances.length > fresh.length ? ` (+${instances.length - fresh.length} long-lived)` : ""}`,
      String(instances.filter((instance) => instance.lifecycleState === "InService").length),
      String(
        instances.filter(
          (instance) =>
            instance.lifecycleState === "InService" &&
            instance.milestones.verified !== undefined &&
            instance.agent.running,
        ).length,
      ),
      String(fresh.filter((instance) => instance.milestones.abandoned !== undefined).length),
      `${deployments.filter((deployment) => deployment.status === "Succeeded").length}/${deployments.filter((deployment) => deployment.status === "Failed").length}`,
      group.warmPool
        ? `${world.autoScaling.warmPoolInstances(group).length} (min ${group.warmPool.minSize})`
        : "",
    ]);
  }
  lines.push(...pad(groupRows), "");
  const userDeployments = [...world.codeDeploy.deployments.values()].filter(
    (deployment) => deployment.creator !== "autoscaling" && deployment.createTime >= startedAt,
  );
  if (userDeployments.length > 0) {
    const rows = [["deployment", "group", "creator", "status", "error", "description"]];
    for (const deployment of userDeployments) {
      rows.push([
        deployment.id,
        deployment.deploymentGroupName,
        deployment.creator,
        deployment.status,
        deployment.errorInformation?.code ?? "",
        deployment.description ?? "",
      ]);
    }
    lines.push(...pad(rows), "");
  }
  const calls = Object.entries(summary.apiCalls).reduce<Record<string, number>>(
    (totals, [operation, count]) => {
      const service = operation.split(".")[0]!;
      totals[service] = (totals[service] ?? 0) + count;
      return totals;
    },
    {},
  );
  const hook = summary.hookToCompleteSeconds;
  lines.push(
    `lost ${summary.lost} · duplicate installs ${summary.duplicateInstalls} · lifecycle timeouts ${summary.lifecycleTimeouts} · redeploys ${summary.redeploys} (${summary.redeploysSucceeded} succeeded)`,
    `hook to complete (AWS s): p50 ${hook.p50} · p95 ${hook.p95} · max ${hook.max}`,
    ...recoveryLines(summary),
    ...harmLines(summary),
    `API calls: ${Object.entries(calls)
      .map(([service, count]) => `${service} ${count}`)
      .join(" · ")} · throttled ${summary.throttled}${
      summary.externalDynamoDb ? ` · DynamoDB at ${summary.externalDynamoDb.endpoint}: not counted` : ""
    }`,
    "",
  );
  for (const check of summary.checks)
    lines.push(`${check.ok ? "PASS" : "FAIL"}  ${check.name}: ${check.detail}`);
  lines.push("", summary.ok ? "ok: true" : "ok: false");
  return lines.join("\n");
}
