// A launch replayed by hand (the Lambda console, `npm run replay`) with event completion: the
// invocation follows it step by step, looking at its install itself rather than waiting for SSM's
// event, until it is done or the time runs out. What is not done then goes on to the launch queue,
// which carries it through like any launch: the report says so, and nothing is dropped.
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { sqs } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { chunk } from "../common/concurrency.js";
import type { LaunchConfig } from "../config.js";
import { type AdvanceContext, type AdvanceInput, advanceLaunches } from "./advance.js";
import type { LaunchOutcome, LaunchRequest } from "./types.js";

/** SendMessageBatch takes at most 10 entries; DelaySeconds at most 900. */
const SQS_BATCH_SIZE = 10;
const MAX_DELAY_SECONDS = 900;
/** Looks at an install this often while following it by hand. */
const FOLLOW_SECONDS = 5;

export async function advanceByHand(
  input: AdvanceInput,
  config: LaunchConfig,
  context: AdvanceContext,
): Promise<LaunchOutcome[]> {
  const latest = new Map<string, LaunchOutcome>();
  let step = await advanceLaunches(input, config, { ...context, byHand: true });
  for (;;) {
    for (const outcome of step.instances) latest.set(outcome.instanceId, outcome);
    const pending = step.instances.filter((outcome) => outcome.outcome === "PENDING");
    if (pending.length === 0) break;
    const waitSeconds = Math.min(
      FOLLOW_SECONDS,
      ...pending.map((outcome) => step.resumeAfterSeconds.get(outcome.instanceId) ?? FOLLOW_SECONDS),
    );
    if (clock.now() + waitSeconds * 1000 >= context.deadline) {
      await handOver(pending, input.requests, step.resumeAfterSeconds, config.LAUNCH_QUEUE_URL);
      for (const outcome of pending) {
        latest.set(outcome.instanceId, {
          ...outcome,
          reason: config.LAUNCH_QUEUE_URL
            ? `${outcome.reason}; continued through the launch queue`
            : `${outcome.reason}; replay again to continue`,
        });
      }
      break;
    }
    await clock.sleep(waitSeconds * 1000);
    const ids = new Set(pending.map((outcome) => outcome.instanceId));
    step = await advanceLaunches(
      { requests: input.requests.filter((request) => ids.has(request.instanceId)), signals: [] },
      config,
      { ...context, byHand: true, continuing: true },
    );
  }
  return [...latest.values()];
}

/** The unfinished launches, as replay payloads on the launch queue, each due when its launch is. */
async function handOver(
  pending: readonly LaunchOutcome[],
  requests: readonly LaunchRequest[],
  resumeAfter: ReadonlyMap<string, number>,
  queueUrl: string,
): Promise<void> {
  if (!queueUrl) return;
  for (const batch of chunk(pending, SQS_BATCH_SIZE)) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((outcome, index) => {
          const request = requests.find((candidate) => candidate.instanceId === outcome.instanceId);
          return {
            Id: String(index),
            DelaySeconds: Math.min(MAX_DELAY_SECONDS, resumeAfter.get(outcome.instanceId) ?? 0),
            MessageBody: JSON.stringify({
              instanceIds: [outcome.instanceId],
              autoScalingGroupName: outcome.autoScalingGroupName,
              ...(outcome.lifecycleHookName ? { lifecycleHookName: outcome.lifecycleHookName } : {}),
              ...(request?.startedAt
                ? { lifecycleActionStartedAt: new Date(request.startedAt).toISOString() }
                : {}),
              source: "replay",
            }),
          };
        }),
      }),
    );
  }
}
