// Run-until-done, the launch step's driver for a replay by hand (the console, `npm run replay`) and
// `launch.completion: "polling"` (step.ts's stepOnce serves the queue): steps, following installs every
// poll interval, until every launch is done or the budget runs out; the rest goes on through the queue.
import { clock } from "../common/clock.js";
import type { LaunchConfig } from "../config.js";
import { enqueueReplays, replayPayload } from "./queue.js";
import { stepOnce } from "./step.js";
import type { LaunchOutcome, LaunchWork, StepContext } from "./types.js";

/** Run-until-done: steps until every launch is done or the budget runs out; the rest goes to the queue. */
export async function runUntilDone(
  input: LaunchWork,
  config: LaunchConfig,
  context: StepContext,
): Promise<LaunchOutcome[]> {
  const latest = new Map<string, LaunchOutcome>();
  let work = input;
  for (let round = 0; ; round += 1) {
    const continuing = round > 0 || context.continuing;
    const step = await stepOnce(work, config, { ...context, follow: true, continuing });
    for (const outcome of step.instances) latest.set(outcome.instanceId, outcome);
    const pending = step.instances.filter((outcome) => outcome.outcome === "PENDING");
    if (pending.length === 0) return [...latest.values()];
    const wakeAt =
      Math.min(...pending.map((outcome) => step.resumeAfterSeconds.get(outcome.instanceId) ?? 5)) * 1000;
    if (clock.now() + wakeAt >= context.deadline) {
      // The unfinished launches, as replay payloads on the launch queue, each due when its launch is.
      const { failed } = config.LAUNCH_QUEUE_URL
        ? await enqueueReplays(
            config.LAUNCH_QUEUE_URL,
            pending.map((outcome) => {
              const request = input.requests.find((candidate) => candidate.instanceId === outcome.instanceId);
              const launch = {
                ...request,
                instanceId: outcome.instanceId,
                group: outcome.autoScalingGroupName,
                hook: outcome.lifecycleHookName,
              };
              return {
                payload: replayPayload(launch, "operator"),
                delaySeconds: step.resumeAfterSeconds.get(outcome.instanceId),
              };
            }),
          )
        : { failed: [] };
      for (const outcome of pending) {
        const failure = failed.find((entry) => entry.instanceId === outcome.instanceId);
        const how = !config.LAUNCH_QUEUE_URL
          ? "replay again to continue"
          : failure
            ? `could not be handed to the launch queue (${`${failure.code || "error"}: ${failure.message}`.trim()}); replay again to continue`
            : "continued through the launch queue";
        latest.set(outcome.instanceId, { ...outcome, reason: `${outcome.reason}; ${how}` });
      }
      return [...latest.values()];
    }
    await clock.sleep(wakeAt);
    const ids = new Set(pending.map((outcome) => outcome.instanceId));
    work = { requests: input.requests.filter((request) => ids.has(request.instanceId)), signals: [] };
  }
}
