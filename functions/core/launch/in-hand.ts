// A launch in hand for one invocation of event completion: its record, what the invocation decided
// for it on the way, and how it reads as a lifecycle action and as a reported outcome.
import { clock } from "../common/clock.js";
import type { LifecycleAction } from "./lifecycle.js";
import type { LaunchRecord } from "./records.js";
import type { LaunchOutcome, LaunchRequest } from "./types.js";

/** A launch in hand for this invocation: its record, and what was decided for it on the way. */
export interface InHand {
  record: LaunchRecord;
  /** The command's end was signalled (an event) or is overdue: read its result now. */
  readNow: boolean;
  /** Its command was read a moment ago by another invocation: not read again until `heldUntil`. */
  heldUntil?: number;
  /** Ready for an install this invocation (registered now, a failed install to retry). */
  sendNow: boolean;
  /** Settled: complete the lifecycle action with this. */
  finish?: { ok: boolean; reason: string };
}

export function newHand(record: LaunchRecord): InHand {
  return { record, readNow: false, sendNow: false };
}

export function actionOf(record: LaunchRecord): LifecycleAction {
  return { group: record.group, hook: record.hook, instanceId: record.instanceId, token: record.token };
}

export function actionOfRequest(request: LaunchRequest): LifecycleAction {
  return {
    group: request.group,
    hook: request.hook ?? "",
    instanceId: request.instanceId,
    token: request.token,
  };
}

export function requestOf(record: LaunchRecord): LaunchRequest {
  return {
    instanceId: record.instanceId,
    group: record.group,
    hook: record.hook,
    startedAt: record.startedAt,
    source: "event",
  };
}

export function outcomeOf(
  request: LaunchRequest,
  outcome: LaunchOutcome["outcome"],
  reason: string,
): LaunchOutcome {
  const since = request.startedAt ?? clock.now();
  return {
    instanceId: request.instanceId,
    autoScalingGroupName: request.group,
    ...(request.hook ? { lifecycleHookName: request.hook } : {}),
    outcome,
    reason,
    elapsedSeconds: Math.max(0, Math.round((clock.now() - since) / 100) / 10),
  };
}
