import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { sqs } from "./core/common/clients.js";
import { clock } from "./core/common/clock.js";
import { errorMessage } from "./core/common/errors.js";
import { dynamoLease } from "./core/common/lease.js";
import { logger, metrics, tracer } from "./core/common/powertools.js";
import { loadLaunchConfig } from "./core/config.js";
import { type LaunchOutcome, type LaunchRequest, reconcileLaunches } from "./core/launch.js";
import { parseLaunchInput } from "./schemas/launch-input.js";
import { isObject, parseOrThrow } from "./schemas/parse.js";
import { SqsBatchSchema } from "./schemas/sqs.js";

/**
 * Launch path entry point. Accepts an SQS batch of launch lifecycle events (what the stack wires),
 * one raw EventBridge event (pasted into the Lambda console), or a replay payload
 * `{"instanceIds": [...], "autoScalingGroupName": "...", "lifecycleHookName"?: "..."}`.
 */
const config = loadLaunchConfig();
const lease = dynamoLease(config.LEASE_TABLE);

export interface LaunchReport {
  instances: LaunchOutcome[];
  /** Records that carried nothing to do (test notifications). */
  skippedRecords?: { messageId: string; reason: string }[];
  /** Records that failed validation or processing; they go back to the queue and on to its DLQ. */
  failedRecords?: { messageId: string; error: string }[];
  /** SQS partial batch response: these messages are redelivered. */
  batchItemFailures?: { itemIdentifier: string }[];
}

export async function handleLaunch(event: unknown, context: Context): Promise<LaunchReport> {
  const deadline = clock.now() + context.getRemainingTimeInMillis() - config.TIME_RESERVE_SECONDS * 1000;
  const run = (requests: LaunchRequest[]) =>
    reconcileLaunches(requests, config, { deadline, correlationId: context.awsRequestId, lease });

  if (isObject(event) && "Records" in event) {
    return handleBatch(event, run);
  }
  const requests = parseLaunchInput(event);
  if (requests === "test-notification") return { instances: [] };
  return { instances: await run(requests) };
}

async function handleBatch(
  event: unknown,
  run: (requests: LaunchRequest[]) => Promise<LaunchOutcome[]>,
): Promise<LaunchReport> {
  const batch = parseOrThrow(SqsBatchSchema, event, "SQS batch");
  const failed: { messageId: string; error: string }[] = [];
  const skipped: { messageId: string; reason: string }[] = [];
  const byRecord = new Map<string, LaunchRequest[]>();
  for (const record of batch.Records) {
    try {
      const requests = parseLaunchInput(parseBody(record.body));
      if (requests === "test-notification")
        skipped.push({ messageId: record.messageId, reason: "autoscaling:TEST_NOTIFICATION" });
      else byRecord.set(record.messageId, requests);
    } catch (error) {
      // A malformed record fails alone: it returns to the queue and reaches the DLQ after
      // maxReceiveCount deliveries, without holding back the rest of the batch.
      logger.error("rejected launch record", { messageId: record.messageId, error: errorMessage(error) });
      failed.push({ messageId: record.messageId, error: errorMessage(error) });
    }
  }
  const instances = await run([...byRecord.values()].flat());
  const unfinished = new Set(
    instances.filter((item) => item.outcome === "PENDING").map((item) => item.instanceId),
  );
  const retry = [...byRecord].filter(([, requests]) =>
    requests.some((request) => unfinished.has(request.instanceId)),
  );
  // Out of time here: resume soon. Busy in another invocation: the visibility timeout is the right wait.
  const busy = new Set(instances.filter((item) => item.busyElsewhere).map((item) => item.instanceId));
  const resumeSoon = new Set(
    retry
      .filter(([, requests]) => !requests.some((request) => busy.has(request.instanceId)))
      .map(([messageId]) => messageId),
  );
  await handBack(batch.Records.filter((record) => resumeSoon.has(record.messageId)));
  const batchItemFailures = [
    ...failed.map((item) => item.messageId),
    ...retry.map(([messageId]) => messageId),
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
async function handBack(records: { messageId: string; receiptHandle?: string }[]): Promise<void> {
  if (!config.LAUNCH_QUEUE_URL) return;
  for (const record of records) {
    if (!record.receiptHandle) continue;
    try {
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: config.LAUNCH_QUEUE_URL,
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: config.RESUME_AFTER_SECONDS,
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

export const handler = middy(handleLaunch)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer))
  .use(logMetrics(metrics));
