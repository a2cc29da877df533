// Event completion, before an install: is the instance Online with SSM yet, and does it still wait
// on its lifecycle action at all? There is no event for "Online with SSM", so a launch not yet
// registered is looked at every REGISTRATION_POLL_SECONDS, all the batch's instances in one call.
import { describeOnline } from "../agent/ssm-commands.js";
import { WAITING_STATES } from "../contract.js";
import type { InHand } from "./in-hand.js";
import { describeLifecycleStates } from "./lifecycle.js";

/** How often Auto Scaling is asked whether an instance slow to register still waits. */
const STATE_CHECK_MS = 60_000;

/**
 * An instance that never registers may have been terminated or detached meanwhile: once a minute,
 * Auto Scaling says whether it still waits, so it is not looked at until its registration deadline.
 */
export async function checkStillWaiting(
  items: readonly InHand[],
  now: number,
  close: (item: InHand, reason: string) => void,
): Promise<void> {
  const due = items.filter(
    ({ record }) =>
      record.phase === "registering" && now - (record.stateCheckedAt ?? record.startedAt) >= STATE_CHECK_MS,
  );
  if (due.length === 0) return;
  const states = await describeLifecycleStates(due.map(({ record }) => record.instanceId));
  for (const item of due) {
    item.record.stateCheckedAt = now;
    const state = states.get(item.record.instanceId);
    if (state && WAITING_STATES.has(state.lifecycleState)) continue;
    close(
      item,
      state
        ? `instance is ${state.lifecycleState}; its launch wait is over`
        : "instance is no longer in the group (terminated or detached)",
    );
  }
}

/** Instances now Online are ready for their install; those past their deadline fail. */
export async function checkRegistration(
  items: readonly InHand[],
  now: number,
  timeoutMs: number,
): Promise<void> {
  const registering = items.filter(({ record }) => record.phase === "registering" && !record.sendingSince);
  if (registering.length === 0) return;
  const online = await describeOnline(registering.map(({ record }) => record.instanceId));
  for (const item of registering) {
    if (online.has(item.record.instanceId)) {
      item.sendNow = true;
      item.record.reason = "registered with SSM";
    } else if (now >= item.record.startedAt + timeoutMs) {
      item.finish = {
        ok: false,
        reason: "never came Online with SSM (check the instance profile, SSM Agent and its network path)",
      };
      item.record.reason = item.finish.reason;
    }
  }
}
