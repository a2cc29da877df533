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

/** The summary printed at the end of a run: groups, deployments, figures and checks. */
export function formatSummary(result: ScenarioResult, serviceGroups: readonly string[]): string {
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
      "service hook",
      "launched",
      "in service",
      "verified agent",
      "replaced",
      "launch deployments ok/failed",
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
      serviceGroups.includes(group.name) ? "yes" : "no",
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
    `API calls: ${Object.entries(calls)
      .map(([service, count]) => `${service} ${count}`)
      .join(" · ")} · throttled ${summary.throttled}`,
    "",
  );
  for (const check of summary.checks)
    lines.push(`${check.ok ? "PASS" : "FAIL"}  ${check.name}: ${check.detail}`);
  lines.push("", summary.ok ? "ok: true" : "ok: false");
  return lines.join("\n");
}
