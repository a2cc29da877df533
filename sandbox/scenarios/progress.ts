import type { TraceEntry } from "../world/trace.js";

/** Trace kinds that are state changes worth a line while a scenario runs. */
const SHOWN = new Set([
  "group.capacity",
  "instance.launched",
  "instance.pending-wait",
  "instance.never-registers",
  "instance.ssm-online",
  "install.succeeded",
  "install.failed",
  "install.duplicate",
  "agent.crashed",
  "verify.running",
  "verify.not-running",
  "hook.completed",
  "hook.timeout",
  "hook.deleted",
  "distributor.published",
  "distributor.withdrawn",
  "distributor.outage",
  "instance.warmed",
  "instance.leaves-warm-pool",
  "instance.in-service",
  "instance.abandoned",
  "instance.terminated",
  "deployment.created",
  "deployment.target-failed",
  "deployment.succeeded",
  "deployment.failed",
  "lambda.failed",
  "lambda.failure-destination",
  "sqs.dead-letter",
  "event.dropped",
  "scenario",
  "world.error",
]);

/** One progress line per state change: AWS time since the start, then what happened. */
export function formatProgress(entry: TraceEntry, startedAt: number): string | undefined {
  if (!SHOWN.has(entry.kind)) return undefined;
  const seconds = Math.max(0, Math.round((entry.at - startedAt) / 1000));
  const clock = `${String(Math.floor(seconds / 60)).padStart(3, " ")}m${String(seconds % 60).padStart(2, "0")}s`;
  const group = entry.groupName ? entry.groupName.padEnd(12).slice(0, 12) : "".padEnd(12);
  return `${clock}  ${group}  ${entry.message}`;
}
