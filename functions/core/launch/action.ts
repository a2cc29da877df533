// The lifecycle half of a launch record: the pure transitions of our lifecycle action around the
// agent work (agent/job.ts). A launch starts when its action starts, ends when Auto Scaling says the
// action is over, and is completed with a result that fails open. docs/launch-state-machine.md draws
// both halves from these names.
import { end, newJob } from "../agent/job.js";
import { WAITING_STATES } from "../contract.js";
import type { LaunchRecord } from "./records.js";
import type { LaunchRequest } from "./types.js";

/** Two starts this close are one launch (an event's time and its scaling activity's differ a little). */
export const SAME_START_MS = 60_000;

/**
 * The one rule for "the same launch": the same token when both carry one, else starts within a minute
 * of each other (or no start known). A warm-pool instance launches twice, each with its own token.
 */
export function sameLaunch(
  record: LaunchRecord,
  request: Pick<LaunchRequest, "token" | "startedAt">,
): boolean {
  if (request.token && record.token) return request.token === record.token;
  if (request.startedAt === undefined) return true;
  return Math.abs(request.startedAt - record.startedAt) <= SAME_START_MS;
}

/** A request about an earlier launch than the record's (a late duplicate): it must not replace it. */
export function earlierLaunch(record: LaunchRecord, request: LaunchRequest): boolean {
  return request.startedAt !== undefined && request.startedAt < record.startedAt - SAME_START_MS;
}

/**
 * A new launch; it replaces the record of the instance's earlier one, whose version it takes over. A
 * dry run holds nothing: it sends nothing and lets the instance in at once.
 */
export function newLaunch(
  request: LaunchRequest,
  previous: LaunchRecord | undefined,
  now: number,
  dryRun?: string,
): LaunchRecord {
  const record: LaunchRecord = {
    ...newJob(request.instanceId),
    group: request.group,
    hook: request.hook ?? "",
    ...(request.token ? { token: request.token } : {}),
    ...(request.origin ? { origin: request.origin } : {}),
    startedAt: request.startedAt ?? now,
    heartbeatTimeoutSeconds: request.heartbeatTimeoutSeconds ?? 3600,
    version: previous?.version ?? 0,
  };
  if (dryRun) end(record, { ok: true, reason: dryRun });
  return record;
}

/**
 * A launch event this young, whose heartbeat window is open, is our open action: only we complete it.
 * Older ones (a late or repeated event, a long registration) are checked with Auto Scaling before an
 * install goes out: in a morning burst that look competes with the completions for the same rate.
 */
const FRESH_LAUNCH_MS = 120_000;

export function openForSure(record: LaunchRecord, now: number): boolean {
  return record.token !== undefined && now - record.startedAt < FRESH_LAUNCH_MS;
}

/**
 * Done, and not by an action that ended without us: our action was completed (CONTINUE or ABANDON);
 * what still holds the instance is another hook, such as CodeDeploy's launch deployment.
 */
export function completedByUs(record: LaunchRecord): boolean {
  return record.phase === "done" && record.outcome !== "ALREADY_COMPLETED";
}

/** The lifecycle action ended without us (terminated, completed elsewhere, timed out): done. */
export function close(record: LaunchRecord, reason: string): void {
  record.phase = "done";
  record.outcome = "ALREADY_COMPLETED";
  record.reason = reason;
}

/** Our action's heartbeat window ran out without a beat: Auto Scaling has applied its default result. */
export function windowLapsed(record: LaunchRecord, now: number): boolean {
  return now - (record.lastBeatAt ?? record.startedAt) >= record.heartbeatTimeoutSeconds * 1000;
}

/** A heartbeat is due once half the window has passed. */
export function beatDueAt(record: LaunchRecord): number {
  return (record.lastBeatAt ?? record.startedAt) + (record.heartbeatTimeoutSeconds * 1000) / 2;
}

export function onBeat(record: LaunchRecord, alive: boolean | "throttled", now: number): void {
  if (alive === true) record.lastBeatAt = now;
  else if (alive === false) close(record, "the lifecycle action ended while the agent was being set up");
}

/** Auto Scaling said where the instance stands; a launch wait that is over ends the launch. */
export function onStateSeen(record: LaunchRecord, lifecycleState: string | undefined, now: number): void {
  record.stateCheckedAt = now;
  if (WAITING_STATES.has(lifecycleState ?? "")) return;
  close(
    record,
    lifecycleState
      ? `instance is ${lifecycleState}; its launch wait is over`
      : "instance is no longer in the group (terminated or detached)",
  );
}

/**
 * Fail open: a launch whose agent could not be verified is let in (CONTINUE) unless the failure is
 * the instance's own, the stage asked for ABANDON, and the group's breaker is closed; CodeDeploy's own
 * hook then judges the instance by its deployment, as it would without us.
 */
export function decideResult(
  record: LaunchRecord,
  failureResult: "ABANDON" | "CONTINUE",
  breakerOpen: boolean,
): void {
  if (record.phase !== "finishing" || record.result) return;
  const ended = record.ended;
  if (!ended || ended.ok) {
    record.result = "CONTINUE";
    return;
  }
  const own = ended.fault === "instance";
  const abandon = own && failureResult === "ABANDON" && !breakerOpen;
  record.result = abandon ? "ABANDON" : "CONTINUE";
  const why = abandon
    ? "ABANDON (FAILURE_RESULT)"
    : !own
      ? "CONTINUE (not the instance's own fault)"
      : failureResult === "ABANDON"
        ? "CONTINUE (the group's breaker is open: several launches in a row failed)"
        : "CONTINUE (FAILURE_RESULT)";
  record.reason = `${ended.reason}; completed ${why}`;
}

/** CompleteLifecycleAction answered (false: the action had already ended); a throttled one is tried again. */
export function onCompleted(record: LaunchRecord, completed: boolean | "throttled", now: number): void {
  record.heldUntil = completed === "throttled" ? now : undefined;
  if (completed === "throttled") return;
  record.phase = "done";
  record.outcome = completed ? record.result : "ALREADY_COMPLETED";
  if (!completed) record.reason = `${record.reason}; the lifecycle action had already ended`;
}

/**
 * Auto Scaling admits completions at a fixed rate (a token bucket) and a throttled try costs nothing
 * but the call: under a burst, what decides who waits is who tries when a token comes. The launch held
 * longest in Pending:Wait goes first and tries most often: its group has waited on it longest, and its
 * heartbeat timeout is nearest. A launch kept waiting for its completion longer than LATE_SHARE of the
 * time its own work took goes before all of those, the latest first, so a quick launch is not left at
 * the back. At a 1,000-instance burst on four seeds, against the order by lateness alone, this order
 * measured the median overhead 1-5 points lower (3 on average) and its 95th percentile 12-15 points
 * higher (docs/performance.md#completion-order).
 */
const COMPLETION_RETRY_MS = 3_000;
/** A launch held this long tries every COMPLETION_RETRY_MS; one held twice as long, twice as often. */
const HELD_REFERENCE_MS = 90_000;
const LATE_SHARE = 0.4;
/** A late launch tries at least this many times as often as one held HELD_REFERENCE_MS. */
const LATE_BOOST = 10;

/**
 * How urgent a launch's completion is: how long it has been held (in HELD_REFERENCE_MS, at most
 * LATE_BOOST), or once it is late, LATE_BOOST plus how late (its wait against its work).
 */
export function completionUrgency(record: LaunchRecord, now: number): number {
  const since = record.finishingSince ?? now;
  const held = Math.min(LATE_BOOST, Math.max(0, now - record.startedAt) / HELD_REFERENCE_MS);
  const late = (now - since) / Math.max(1_000, since - record.startedAt);
  return late > LATE_SHARE ? LATE_BOOST + late : held;
}

export function completionRetryMs(record: LaunchRecord, now: number): number {
  const jitter = 0.5 + Math.random();
  return (jitter * COMPLETION_RETRY_MS) / Math.max(0.5, completionUrgency(record, now));
}
