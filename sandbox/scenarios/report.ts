import { escapeXml } from "../server/query-protocol.js";
import type { Instance } from "../world/instances.js";
import type { ScenarioResult } from "./run.js";

/**
 * A self-contained HTML timeline of a run: one row per instance (launched, SSM online, agent
 * installed, verified, in service or abandoned), then one row per deployment. No scripts, no
 * external assets: it opens from disk in any browser.
 */
interface Segment {
  from: number;
  to: number;
  kind: string;
  label: string;
}

const COLOURS: Record<string, string> = {
  launching: "#c9ced6",
  registering: "#9cc3e6",
  "ssm-online": "#d5e6f5",
  installing: "#f0b35a",
  verifying: "#f2dc6b",
  completing: "#b7d99a",
  "in-service": "#3f9b4f",
  warmed: "#8fb8b0",
  "agent-change": "#b3541e",
  abandoned: "#d64545",
  succeeded: "#3f9b4f",
  failed: "#d64545",
  running: "#5b8ed6",
};

/**
 * The launch of an instance as consecutive phases up to its outcome (in service, or abandoned until
 * terminated); installs after it entered service (the failure path's upgrades) show as markers.
 */
function instanceSegments(instance: Instance, start: number, end: number): Segment[] {
  const m = instance.milestones;
  const at = (value: number | undefined) => (value === undefined ? undefined : Math.max(start, value));
  const outcome = at(m.inService) ?? at(m.abandoned);
  const phases: { at: number | undefined; kind: string; label: string }[] = [
    { at: at(m.launched) ?? start, kind: "launching", label: "launching" },
    { at: at(m.pendingWait), kind: "registering", label: "Pending:Wait; SSM Agent not registered yet" },
    { at: at(m.ssmOnline), kind: "ssm-online", label: "SSM online" },
    { at: at(m.installSent), kind: "installing", label: "agent install sent" },
    { at: at(m.installed), kind: "verifying", label: "agent installed; verification" },
    { at: at(m.verified), kind: "completing", label: "agent verified; completing the lifecycle action" },
    { at: at(m.warmed), kind: "warmed", label: "prepared and stopped in the warm pool" },
    { at: at(m.leftWarmPool), kind: "launching", label: "started again, leaving the warm pool" },
  ];
  const launch = phases
    .filter(
      (phase): phase is { at: number; kind: string; label: string } =>
        phase.at !== undefined && (outcome === undefined || phase.at < outcome),
    )
    .sort((a, b) => a.at - b.at);
  const segments: Segment[] = [];
  const stop = outcome ?? at(m.terminated) ?? end;
  launch.forEach((phase, index) => {
    const next = launch[index + 1]?.at ?? stop;
    if (next > phase.at) segments.push({ from: phase.at, to: next, kind: phase.kind, label: phase.label });
  });
  if (m.inService !== undefined && outcome === at(m.inService)) {
    segments.push({ from: outcome!, to: at(m.terminated) ?? end, kind: "in-service", label: "in service" });
    for (const change of [m.installed, m.verified]) {
      if (change !== undefined && change > m.inService && change >= start) {
        segments.push({
          from: change,
          to: change + (end - start) / 300,
          kind: "agent-change",
          label: change === m.installed ? "agent reinstalled" : "agent verified",
        });
      }
    }
  } else if (m.abandoned !== undefined) {
    segments.push({
      from: outcome!,
      to: at(m.terminated) ?? end,
      kind: "abandoned",
      label: `abandoned: ${instance.abandonReason ?? ""}`,
    });
  }
  return segments;
}

export function renderReport(result: ScenarioResult): string {
  const { sandbox, summary, startedAt } = result;
  const { world } = sandbox;
  const end = Math.max(world.now(), startedAt + 1000);
  const span = end - startedAt;
  const pct = (value: number) =>
    (((Math.min(end, Math.max(startedAt, value)) - startedAt) / span) * 100).toFixed(3);
  const width = (from: number, to: number) => Math.max(0.15, Number(pct(to)) - Number(pct(from))).toFixed(3);
  const seconds = (value: number) => `${Math.round((value - startedAt) / 1000)} s`;
  const bar = (segment: Segment) =>
    `<div class="seg" style="left:${pct(segment.from)}%;width:${width(segment.from, segment.to)}%;background:${COLOURS[segment.kind] ?? "#999"}" title="${escapeXml(`${segment.label} (${seconds(segment.from)} to ${seconds(segment.to)})`)}"></div>`;

  const instances = [...world.instances.values()].sort(
    (a, b) => (a.groupName ?? "").localeCompare(b.groupName ?? "") || a.launchedAt - b.launchedAt,
  );
  const instanceRows = instances.map((instance) => {
    const segments = instanceSegments(instance, startedAt, end);
    const outcome = instance.milestones.abandoned !== undefined ? "abandoned" : instance.lifecycleState;
    const agent = `${instance.agent.version ?? "no agent"}${instance.agent.package && !instance.agent.running ? " (stopped)" : ""}`;
    return `<tr><td class="name"><b>${escapeXml(instance.groupName ?? "")}</b> ${instance.id}<br><span>${instance.platform} · agent ${escapeXml(agent)} · ${escapeXml(outcome)}</span></td><td class="lane">${segments.map(bar).join("")}</td></tr>`;
  });
  const deployments = [...world.codeDeploy.deployments.values()].filter(
    (deployment) => (deployment.completeTime ?? end) >= startedAt,
  );
  const deploymentRows = deployments.map((deployment) => {
    const from = deployment.createTime;
    const to = deployment.completeTime ?? end;
    const kind =
      deployment.status === "Succeeded" ? "succeeded" : deployment.status === "Failed" ? "failed" : "running";
    const failed = deployment.targets
      .flatMap((target) =>
        target.lifecycleEvents
          .filter((event) => event.status === "Failed")
          .map((event) => `${target.instanceId} ${event.lifecycleEventName} ${event.diagnostics?.errorCode}`),
      )
      .join("; ");
    const label = `${deployment.id} ${deployment.creator} ${deployment.status}${failed ? `: ${failed}` : ""}`;
    const targets = deployment.targets.map((target) => target.instanceId).join(", ");
    return `<tr><td class="name" title="${escapeXml(deployment.description ?? "")}"><b>${deployment.id}</b> ${escapeXml(deployment.deploymentGroupName)}<br><span>${escapeXml(deployment.creator)} · ${escapeXml(deployment.status)} · ${escapeXml(targets || "no targets")}${deployment.description ? ` · ${escapeXml(deployment.description)}` : ""}</span></td><td class="lane">${bar({ from, to, kind, label })}</td></tr>`;
  });
  const ticks = Array.from({ length: 11 }, (_, index) => {
    const at = startedAt + (span * index) / 10;
    return `<div class="tick" style="left:${pct(at)}%">${seconds(at)}</div>`;
  }).join("");
  const legend = Object.entries(COLOURS)
    .map(([kind, colour]) => `<span class="key"><i style="background:${colour}"></i>${kind}</span>`)
    .join("");
  const checks = summary.checks
    .map(
      (check) =>
        `<li class="${check.ok ? "pass" : "fail"}">${check.ok ? "PASS" : "FAIL"} ${escapeXml(check.name)}: ${escapeXml(check.detail)}</li>`,
    )
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentfix sandbox: ${escapeXml(summary.scenario)} (seed ${escapeXml(String(summary.seed))})</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:20px 0 6px}
table{border-collapse:collapse;width:100%;table-layout:fixed}td{border-bottom:1px solid #eceef2;padding:3px 6px;vertical-align:middle}
td.name{width:300px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;font-family:ui-monospace,monospace;font-size:12px}td.name span{color:#687080;font-family:system-ui,sans-serif}
td.lane{position:relative;height:30px}.seg{position:absolute;top:8px;height:14px;border-radius:2px}
.axis{position:relative;height:18px;margin-left:312px;border-bottom:1px solid #c9ced6}.tick{position:absolute;font-size:11px;color:#687080;transform:translateX(-50%)}
.key{margin-right:14px;white-space:nowrap}.key i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-2px}
.pass{color:#2d7a3a}.fail{color:#b42f2f}ul{padding-left:18px}
</style></head><body>
<h1>agentfix sandbox: ${escapeXml(summary.scenario)} ${summary.ok ? "(ok)" : "(NOT ok)"}</h1>
<p>Seed ${escapeXml(String(summary.seed))} · ${summary.instances} instances per group · ${summary.awsSeconds} AWS seconds · in service ${summary.inService}, verified ${summary.verified}, abandoned ${summary.abandoned}, lost ${summary.lost}, duplicate installs ${summary.duplicateInstalls} · hook to complete p50 ${summary.hookToCompleteSeconds.p50} s, p95 ${summary.hookToCompleteSeconds.p95} s</p>
<ul>${checks}</ul>
<p>${legend}</p>
<h2>Instances</h2>
<div class="axis">${ticks}</div>
<table>${instanceRows.join("\n")}</table>
<h2>Deployments</h2>
<div class="axis">${ticks}</div>
<table>${deploymentRows.join("\n")}</table>
</body></html>
`;
}
