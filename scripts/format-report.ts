/**
 * Renders a function's report as a readable table for the terminal. Understands the launch report
 * (`instances`), the deployment-failure report (`decision`) and the sweep report (`stale`); anything
 * else is printed as JSON.
 */
export function formatReport(report: unknown): string {
  if (!report || typeof report !== "object") return JSON.stringify(report, null, 2);
  const value = report as Record<string, unknown>;
  if (Array.isArray(value.instances)) return formatLaunch(value);
  if (typeof value.decision === "string") return formatDeployment(value);
  if (Array.isArray(value.stale)) return formatSweep(value);
  return JSON.stringify(report, null, 2);
}

function formatLaunch(report: Record<string, unknown>): string {
  const rows = (report.instances as Record<string, unknown>[]).map((item) => [
    text(item.instanceId),
    text(item.autoScalingGroupName),
    text(item.outcome),
    text(item.agentVersion),
    seconds(item.elapsedSeconds),
    list(item.installCommandIds),
    list(item.verifyCommandIds),
    text(item.reason),
  ]);
  const lines = [
    table(
      ["instance", "group", "outcome", "agent", "elapsed", "install commands", "verify commands", "reason"],
      rows,
    ),
  ];
  const failed = report.failedRecords as { messageId: string; error: string }[] | undefined;
  for (const record of failed ?? []) lines.push(`rejected record ${record.messageId}: ${record.error}`);
  const skipped = report.skippedRecords as { messageId: string; reason: string }[] | undefined;
  for (const record of skipped ?? []) lines.push(`skipped record ${record.messageId}: ${record.reason}`);
  const retry = report.batchItemFailures as { itemIdentifier: string }[] | undefined;
  if (retry && retry.length > 0)
    lines.push(`redelivered by the queue: ${retry.map((item) => item.itemIdentifier).join(", ")}`);
  return lines.join("\n");
}

function formatDeployment(report: Record<string, unknown>): string {
  const fields: [string, string][] = [
    ["deployment", text(report.deploymentId)],
    ["original deployment", text(report.originalDeploymentId)],
    ["decision", text(report.decision)],
    ["reason", text(report.reason)],
    ["redeployment", text(report.redeploymentId)],
    ["attempt", text(report.attempt)],
    ["elapsed", seconds(report.elapsedSeconds)],
  ];
  const lines = [
    table(
      ["field", "value"],
      fields.filter(([, value]) => value !== ""),
    ),
  ];
  const upgraded = (report.upgraded as Record<string, unknown>[] | undefined) ?? [];
  if (upgraded.length > 0) {
    lines.push("", "agent upgrades:");
    lines.push(
      table(
        ["instance", "from", "to"],
        upgraded.map((item) => [text(item.instanceId), text(item.from), text(item.to)]),
      ),
    );
  }
  const targets = (report.failedTargets as Record<string, unknown>[] | undefined) ?? [];
  if (targets.length > 0) {
    lines.push("", "failed targets:");
    lines.push(
      table(
        ["instance", "classification", "lifecycle event", "error code", "message"],
        targets.map((item) => [
          text(item.instanceId),
          text(item.classification),
          text(item.lifecycleEvent),
          text(item.errorCode),
          text(item.message),
        ]),
      ),
    );
  }
  return lines.join("\n");
}

function formatSweep(report: Record<string, unknown>): string {
  const stale = report.stale as Record<string, unknown>[];
  const header = `groups: ${list(report.groups)}; examined: ${text(report.examined)}; enqueued: ${text(report.enqueued)}${report.dryRun ? " (dry run)" : ""}`;
  if (stale.length === 0) return `${header}\nno instance is stuck in Pending:Wait`;
  return `${header}\n${table(
    ["instance", "group", "waiting"],
    stale.map((item) => [text(item.instanceId), text(item.group), seconds(item.waitingSeconds)]),
  )}`;
}

/** A plain-text table whose columns fit their widest cell (reasons are not cut). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}

function text(value: unknown): string {
  return value === undefined || value === null ? "" : String(value);
}

function list(value: unknown): string {
  return Array.isArray(value) ? value.join(", ") : text(value);
}

function seconds(value: unknown): string {
  return typeof value === "number" ? `${value} s` : "";
}
