// The launch queue's side of the launch path: an SQS batch becomes launch requests (a malformed record
// fails alone), the outcomes become a partial batch response, and records with unfinished instances
// go back to the queue to be resumed within seconds.
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import { parseLaunchInput } from "../../schemas/launch-input.js";
import { parseOrThrow } from "../../schemas/parse.js";
import { SqsBatchSchema } from "../../schemas/sqs.js";
import { sqs } from "../common/clients.js";
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import type { LaunchOutcome, LaunchRequest } from "./types.js";

export interface LaunchReport {
  instances: LaunchOutcome[];
  /** Records that carried nothing to do (test notifications). */
  skippedRecords?: { messageId: string; reason: string }[];
  /** Records that failed validation or processing; they go back to the queue and on to its DLQ. */
  failedRecords?: { messageId: string; error: string }[];
  /** SQS partial batch response: these messages are redelivered. */
  batchItemFailures?: { itemIdentifier: string }[];
}

export interface QueueSettings {
  /** The queue the function reads; empty leaves redelivery to the visibility timeout. */
  queueUrl: string;
  /** Visibility timeout given to records with unfinished instances. */
  resumeAfterSeconds: number;
}

/** Reconciles the instances of every valid record of an SQS batch and reports per record. */
export async function reconcileQueueBatch(
  event: unknown,
  reconcile: (requests: LaunchRequest[]) => Promise<LaunchOutcome[]>,
  settings: QueueSettings,
): Promise<LaunchReport> {
  const batch = parseOrThrow(SqsBatchSchema, event, "SQS batch");
  const failed: { messageId: string; error: string }[] = [];
  const skipped: { messageId: string; reason: string }[] = [];
  const requestsByRecord = new Map<string, LaunchRequest[]>();
  for (const record of batch.Records) {
    try {
      const requests = parseLaunchInput(parseBody(record.body));
      if (requests === "test-notification")
        skipped.push({ messageId: record.messageId, reason: "autoscaling:TEST_NOTIFICATION" });
      else requestsByRecord.set(record.messageId, requests);
    } catch (error) {
      // A malformed record fails alone: it returns to the queue and reaches the DLQ after
      // maxReceiveCount deliveries, without holding back the rest of the batch.
      logger.error("rejected launch record", { messageId: record.messageId, error: errorMessage(error) });
      failed.push({ messageId: record.messageId, error: errorMessage(error) });
    }
  }
  const instances = await reconcile([...requestsByRecord.values()].flat());
  const unfinished = new Set(
    instances.filter((item) => item.outcome === "PENDING").map((item) => item.instanceId),
  );
  const unfinishedRecords = [...requestsByRecord].filter(([, requests]) =>
    requests.some((request) => unfinished.has(request.instanceId)),
  );
  // Out of time here: resume soon. Busy in another invocation: the visibility timeout is the right wait.
  const busy = new Set(instances.filter((item) => item.busyElsewhere).map((item) => item.instanceId));
  const resumeSoon = new Set(
    unfinishedRecords
      .filter(([, requests]) => !requests.some((request) => busy.has(request.instanceId)))
      .map(([messageId]) => messageId),
  );
  await handBack(
    batch.Records.filter((record) => resumeSoon.has(record.messageId)),
    settings,
  );
  const batchItemFailures = [
    ...failed.map((item) => item.messageId),
    ...unfinishedRecords.map(([messageId]) => messageId),
  ].map((itemIdentifier) => ({ itemIdentifier }));
  return {
    instances,
    ...(skipped.length > 0 ? { skippedRecords: skipped } : {}),
    ...(failed.length > 0 ? { failedRecords: failed } : {}),
    batchItemFailures,
  };
}

/**
 * Unfinished records come back after the queue's visibility timeout, which must outlast a whole
 * invocation. Shortening it for these records lets the next invocation resume them within seconds
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
 * If that fails the visibility timeout still brings them back: nothing is lost, only time.
 */
async function handBack(
  records: { messageId: string; receiptHandle?: string }[],
  settings: QueueSettings,
): Promise<void> {
  if (!settings.queueUrl) return;
  for (const record of records) {
    if (!record.receiptHandle) continue;
    try {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: settings.queueUrl,
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: settings.resumeAfterSeconds,
        }),
      );
    } catch (error) {
      logger.warn("could not hand the record back early; it returns after the visibility timeout", {
        messageId: record.messageId,
        error: errorMessage(error),
      });
    }
  }
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new SyntaxError(`message body is not JSON: ${errorMessage(error)}`);
  }
}
