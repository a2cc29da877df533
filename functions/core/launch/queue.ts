// The launch queue's side of the launch path: an SQS batch becomes launch requests and command
// signals (a malformed record fails alone), the outcomes become a partial batch response, and records
// with unfinished instances go back to the queue, each to come back when its instance is next due.
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { type CommandSignal, parseCommandSignal } from "../../schemas/command-event.js";
import type { LaunchReplay } from "../../schemas/launch-event.js";
import { parseLaunchInput } from "../../schemas/launch-input.js";
import { parseOrThrow } from "../../schemas/parse.js";
import { SqsBatchSchema } from "../../schemas/sqs.js";
import { sqs } from "../common/clients.js";
import { chunk } from "../common/concurrency.js";
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import type { LaunchConfig } from "../config.js";
import type { LaunchOutcome, LaunchRequest, LaunchWork, Stepped } from "./types.js";

export interface LaunchReport {
  instances: LaunchOutcome[];
  /** Records that carried nothing to do (test notifications). */
  skippedRecords?: { messageId: string; reason: string }[];
  /** Records that failed validation or processing; they go back to the queue and on to its DLQ. */
  failedRecords?: { messageId: string; error: string }[];
  /** SQS partial batch response: these messages are redelivered. */
  batchItemFailures?: { itemIdentifier: string }[];
}

/** What a step reports (step.ts); an unfinished instance that names no time is due after the default. */
export type Reconciled = Pick<Stepped, "instances"> & Partial<Stepped>;

/** Reconciles the instances of every valid record of an SQS batch and reports per record. */
export async function reconcileQueueBatch(
  event: unknown,
  reconcile: (work: LaunchWork) => Promise<Reconciled>,
  config: Pick<LaunchConfig, "LAUNCH_QUEUE_URL" | "RESUME_AFTER_SECONDS">,
): Promise<LaunchReport> {
  const batch = parseOrThrow(SqsBatchSchema, event, "SQS batch");
  const failed: { messageId: string; error: string }[] = [];
  const skipped: { messageId: string; reason: string }[] = [];
  const requestsByRecord = new Map<string, LaunchRequest[]>();
  const signalsByRecord = new Map<string, CommandSignal>();
  for (const record of batch.Records) {
    try {
      const body = parseBody(record.body);
      const signal = parseCommandSignal(body);
      const requests = signal ? [] : parseLaunchInput(body);
      if (signal?.instanceId.startsWith("i-")) signalsByRecord.set(record.messageId, signal);
      // A managed node (mi-...) is no instance of an Auto Scaling group: never a launch of ours.
      else if (signal)
        skipped.push({ messageId: record.messageId, reason: `${signal.instanceId} is not an EC2 instance` });
      else if (requests === "test-notification")
        skipped.push({ messageId: record.messageId, reason: "autoscaling:TEST_NOTIFICATION" });
      else requestsByRecord.set(record.messageId, requests);
    } catch (error) {
      // A malformed record fails alone: it returns to the queue and reaches the DLQ after
      // maxReceiveCount deliveries, without holding back the rest of the batch.
      logger.error("rejected launch record", { messageId: record.messageId, error: errorMessage(error) });
      failed.push({ messageId: record.messageId, error: errorMessage(error) });
    }
  }
  const reconciled = await reconcileApart(requestsByRecord, signalsByRecord, reconcile, failed);
  const { instances } = reconciled;
  const due = (instanceId: string) =>
    reconciled.resumeAfterSeconds?.get(instanceId) ?? config.RESUME_AFTER_SECONDS;
  const unfinished = new Set(
    instances.filter((item) => item.outcome === "PENDING").map((item) => item.instanceId),
  );
  // A launch message stays until its launch is done and comes back when it is next due; a command event
  // stays only while its read, or the completion it led to, is still to come (neither must wait for the
  // launch message, which comes back at the install's overdue look).
  const visibility = new Map<string, number>();
  for (const [messageId, requests] of requestsByRecord) {
    const left = requests.filter((request) => unfinished.has(request.instanceId));
    if (left.length > 0)
      visibility.set(messageId, Math.min(...left.map((request) => due(request.instanceId))));
  }
  for (const [messageId, signal] of signalsByRecord)
    if (reconciled.unread?.has(signal.instanceId)) visibility.set(messageId, due(signal.instanceId));
  // Unfinished records come back after the queue's visibility timeout, which must outlast a whole
  // invocation: shortening it for them lets the next invocation resume them within seconds
  // (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
  // If that fails the visibility timeout still brings them back: nothing is lost, only time.
  for (const { messageId, receiptHandle } of batch.Records) {
    const seconds = visibility.get(messageId);
    if (!config.LAUNCH_QUEUE_URL || !receiptHandle || seconds === undefined) continue;
    try {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: config.LAUNCH_QUEUE_URL,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
    } catch (error) {
      logger.warn("could not hand the record back early; it returns after the visibility timeout", {
        messageId,
        error: errorMessage(error),
      });
    }
  }
  const batchItemFailures = [...failed.map((item) => item.messageId), ...visibility.keys()].map(
    (itemIdentifier) => ({ itemIdentifier }),
  );
  return {
    instances,
    ...(skipped.length > 0 ? { skippedRecords: skipped } : {}),
    ...(failed.length > 0 ? { failedRecords: failed } : {}),
    batchItemFailures,
  };
}

/**
 * The whole batch in one step; when that fails with an error it could not leave to its records (an
 * AWS refusal, say), each record is taken alone, so the error fails only the records it concerns.
 */
async function reconcileApart(
  requestsByRecord: Map<string, LaunchRequest[]>,
  signalsByRecord: Map<string, CommandSignal>,
  reconcile: (work: LaunchWork) => Promise<Reconciled>,
  failed: { messageId: string; error: string }[],
): Promise<Reconciled> {
  try {
    return await reconcile({
      requests: [...requestsByRecord.values()].flat(),
      signals: [...signalsByRecord.values()],
    });
  } catch (error) {
    if (requestsByRecord.size + signalsByRecord.size <= 1) throw error;
    logger.warn("the batch failed as a whole; its records are taken one by one", {
      error: errorMessage(error),
    });
  }
  const merged: Stepped = { instances: [], resumeAfterSeconds: new Map(), unread: new Set() };
  for (const messageId of [...requestsByRecord.keys(), ...signalsByRecord.keys()]) {
    const signal = signalsByRecord.get(messageId);
    try {
      const one = await reconcile({
        requests: requestsByRecord.get(messageId) ?? [],
        signals: signal ? [signal] : [],
      });
      merged.instances.push(...one.instances);
      for (const [id, seconds] of one.resumeAfterSeconds ?? []) merged.resumeAfterSeconds.set(id, seconds);
      for (const id of one.unread ?? []) merged.unread.add(id);
    } catch (error) {
      logger.error("launch record failed", { messageId, error: errorMessage(error) });
      failed.push({ messageId, error: errorMessage(error) });
      requestsByRecord.delete(messageId);
      signalsByRecord.delete(messageId);
    }
  }
  return merged;
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new SyntaxError(`message body is not JSON: ${errorMessage(error)}`);
  }
}

/** A launch to look at again, as the launch function takes it from the queue or by hand. */
export function replayPayload(
  launch: { instanceId: string; group: string; hook?: string; startedAt?: number; origin?: string },
  source: "sweep" | "operator",
): LaunchReplay {
  return {
    instanceIds: [launch.instanceId],
    autoScalingGroupName: launch.group,
    ...(launch.hook ? { lifecycleHookName: launch.hook } : {}),
    ...(launch.startedAt !== undefined
      ? { lifecycleActionStartedAt: new Date(launch.startedAt).toISOString() }
      : {}),
    ...(launch.origin === "WarmPool" ? { origin: "WarmPool" as const } : {}),
    source,
  };
}

/** SendMessageBatch takes at most 10 entries; DelaySeconds at most 900. */
const SQS_BATCH_SIZE = 10;
const MAX_DELAY_SECONDS = 900;

export interface NotEnqueued {
  instanceId: string;
  code: string;
  message: string;
}

/** Puts replay payloads on the launch queue, each delayed as asked: how many SQS took, and the rest. */
export async function enqueueReplays(
  queueUrl: string,
  replays: readonly { payload: LaunchReplay; delaySeconds?: number }[],
): Promise<{ enqueued: number; failed: NotEnqueued[] }> {
  const failed: NotEnqueued[] = [];
  let enqueued = 0;
  for (const batch of chunk(replays, SQS_BATCH_SIZE)) {
    const answer = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((replay, index) => ({
          Id: String(index),
          MessageBody: JSON.stringify(replay.payload),
          ...(replay.delaySeconds ? { DelaySeconds: Math.min(MAX_DELAY_SECONDS, replay.delaySeconds) } : {}),
        })),
      }),
    );
    enqueued += answer.Successful?.length ?? 0;
    for (const entry of answer.Failed ?? [])
      failed.push({
        instanceId: batch[Number(entry.Id)]?.payload.instanceIds[0] ?? entry.Id ?? "",
        code: entry.Code ?? "",
        message: entry.Message ?? "",
      });
  }
  return { enqueued, failed };
}
