// Run-until-done, the launch step's second driver (step-and-return, step.ts's stepOnce, serves the
// launch queue). It serves a replay by hand (the console, `npm run replay`) and `launch.completion:
// "polling"`: it takes steps, following installs every poll interval, until every launch is done or
// the time budget runs out; what is left then goes on through the launch queue, and the report says so.
import { clock } from "../common/clock.js";
import type { LaunchConfig } from "../config.js";
import { enqueueReplays, replayPayload } from "./queue.js";
import { type StepContext, stepOnce } from "./step.js";
import type { LaunchOutcome, LaunchRequest, LaunchWork } from "./types.js";

/** Run-until-done: steps until every launch is done or the budget runs out; the rest goes to the queue. */
export async function runUntilDone(
  input: LaunchWork,
  config: LaunchConfig,
  context: StepContext,
): Promise<LaunchOutcome[]> {
  const latest = new Map<string, LaunchOutcome>();
  let step = await stepOnce(input, config, { ...context, follow: true });
  for (;;) {
    for (const outcome of step.instances) latest.set(outcome.instanceId, outcome);
    const pending = step.instances.filter((outcome) => outcome.outcome === "PENDING");
    if (pending.length === 0) return [...latest.values()];
    const wakeAt =
      Math.min(...pending.map((outcome) => step.resumeAfterSeconds.get(outcome.instanceId) ?? 5)) * 1000;
    if (clock.now() + wakeAt >= context.deadline) {
      const failed = await handOver(
        pending,
        input.requests,
        step.resumeAfterSeconds,
        config.LAUNCH_QUEUE_URL,
      );
      for (const outcome of pending) {
        const how = !config.LAUNCH_QUEUE_URL
          ? "replay again to continue"
          : failed.has(outcome.instanceId)
            ? `could not be handed to the launch queue (${failed.get(outcome.instanceId)}); replay again to continue`
            : "continued through the launch queue";
        latest.set(outcome.instanceId, { ...outcome, reason: `${outcome.reason}; ${how}` });
      }
      return [...latest.values()];
    }
    await clock.sleep(wakeAt);
    const ids = new Set(pending.map((outcome) => outcome.instanceId));
    step = await stepOnce(
      { requests: input.requests.filter((request) => ids.has(request.instanceId)), signals: [] },
      config,
      { ...context, follow: true, continuing: true },
    );
  }
}

/** The unfinished launches, as replay payloads on the launch queue, each due when its launch is. */
async function handOver(
  pending: readonly LaunchOutcome[],
  requests: readonly LaunchRequest[],
  resumeAfter: ReadonlyMap<string, number>,
  queueUrl: string,
): Promise<Map<string, string>> {
  if (!queueUrl) return new Map();
  const { failed } = await enqueueReplays(
    queueUrl,
    pending.map((outcome) => {
      const request = requests.find((candidate) => candidate.instanceId === outcome.instanceId);
      const launch = { ...request, instanceId: outcome.instanceId, group: outcome.autoScalingGroupName };
      return {
        payload: replayPayload({ ...launch, hook: outcome.lifecycleHookName }, "operator"),
        delaySeconds: resumeAfter.get(outcome.instanceId),
      };
    }),
  );
  return new Map(
    failed.map((entry) => [entry.instanceId, `${entry.code || "error"}: ${entry.message}`.trim()]),
  );
}
