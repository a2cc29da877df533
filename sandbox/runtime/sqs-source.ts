import type { SQSEvent, SQSRecord } from "aws-lambda";
import type { Queue, QueueMessage } from "../world/sqs.js";
import type { World } from "../world/world.js";
import type { LambdaFunction, LambdaRuntime } from "./lambda.js";

/**
 * An SQS event source mapping: pollers take batches from the queue (batch size, batching window),
 * invoke the function, delete what succeeded and leave the rest to reappear after the visibility
 * timeout; the queue's redrive policy moves a message to the DLQ after maxReceiveCount receives.
 * https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
 */
export interface SqsSourceOptions {
  batchSize?: number;
  maximumBatchingWindowSeconds?: number;
  /** `ReportBatchItemFailures`: only the failed items of a successful invocation come back. */
  reportBatchItemFailures?: boolean;
  /** Batches in flight at once (the mapping's MaximumConcurrency); the function's limit still applies. */
  maximumConcurrency?: number;
}

export class SqsSourceConfigError extends Error {
  override name = "SqsSourceConfigError";
}

export interface SqsSourceStats {
  batches: number;
  messagesReceived: number;
  messagesDeleted: number;
  itemFailures: number;
  failedBatches: number;
}

function toRecord(world: World, queue: Queue, message: QueueMessage): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.receiptHandle ?? "",
    body: message.body,
    attributes: {
      ApproximateReceiveCount: String(message.receiveCount),
      SentTimestamp: String(Math.floor(message.sentAt)),
      SenderId: "AROAEXAMPLEEVENTBRIDGE:events",
      ApproximateFirstReceiveTimestamp: String(Math.floor(message.firstReceivedAt ?? message.sentAt)),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.messageAttributes).map(([name, attribute]) => [
        name,
        {
          dataType: attribute.DataType,
          stringValue: attribute.StringValue,
          binaryValue: attribute.BinaryValue,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: message.md5OfBody,
    eventSource: "aws:sqs",
    eventSourceARN: queue.arn,
    awsRegion: world.region,
  };
}

export function addSqsEventSource(
  runtime: LambdaRuntime,
  world: World,
  fn: LambdaFunction,
  queue: Queue,
  options: SqsSourceOptions = {},
): SqsSourceStats {
  const batchSize = options.batchSize ?? 10;
  const windowMs = (options.maximumBatchingWindowSeconds ?? 0) * 1000;
  if (queue.visibilityTimeoutSeconds < fn.spec.timeoutSeconds) {
    // CreateEventSourceMapping refuses this: a batch could reappear while its invocation still runs.
    throw new SqsSourceConfigError(
      `Queue visibility timeout: ${queue.visibilityTimeoutSeconds} seconds is less than Function timeout: ${fn.spec.timeoutSeconds} seconds`,
    );
  }
  const stats: SqsSourceStats = {
    batches: 0,
    messagesReceived: 0,
    messagesDeleted: 0,
    itemFailures: 0,
    failedBatches: 0,
  };
  runtime.eventSourceMappings.push({
    functionName: fn.spec.name,
    queueName: queue.name,
    batchSize,
    maximumBatchingWindowSeconds: windowMs / 1000,
    reportBatchItemFailures: options.reportBatchItemFailures ?? true,
    maximumConcurrency: options.maximumConcurrency,
  });
  const pollers = Math.max(
    1,
    Math.min(options.maximumConcurrency ?? fn.concurrency.limit, fn.concurrency.limit),
  );
  /** Visible messages, counted up to `enough` (the pollers only ask "any?" and "a full batch?"). */
  const visible = (enough = 1) => {
    const now = world.now();
    let count = 0;
    for (const message of queue.messages) {
      if (message.visibleAt <= now && ++count >= enough) break;
    }
    return count;
  };

  const process = async (messages: QueueMessage[]) => {
    stats.batches++;
    stats.messagesReceived += messages.length;
    const event: SQSEvent = { Records: messages.map((message) => toRecord(world, queue, message)) };
    const handles = new Map(messages.map((message) => [message.messageId, message.receiptHandle ?? ""]));
    const result = await runtime.invoke(fn, event);
    if (!result.ok) {
      stats.failedBatches++;
      return;
    }
    let retry = new Set<string>();
    if (options.reportBatchItemFailures ?? true) {
      const failures =
        (result.result as { batchItemFailures?: { itemIdentifier?: unknown }[] } | undefined)
          ?.batchItemFailures ?? [];
      const ids = failures.map((failure) => failure.itemIdentifier);
      // An identifier that is empty or not in the batch makes Lambda treat the whole batch as failed.
      if (ids.some((id) => typeof id !== "string" || !handles.has(id))) {
        stats.failedBatches++;
        return;
      }
      retry = new Set(ids as string[]);
      stats.itemFailures += retry.size;
    }
    for (const [messageId, handle] of handles) {
      if (retry.has(messageId)) continue;
      world.sqs.deleteMessage(queue, handle);
      stats.messagesDeleted++;
    }
  };

  const poll = async () => {
    while (!runtime.isStopped) {
      const ready = await queue.arrivals.waitFor(world.scheduler, () => visible() > 0, 20_000);
      if (runtime.isStopped) return;
      if (!ready) continue;
      if (windowMs > 0 && visible(batchSize) < batchSize) {
        await queue.arrivals.waitFor(world.scheduler, () => visible(batchSize) >= batchSize, windowMs);
      }
      const messages = world.sqs.receive(queue, batchSize);
      if (messages.length === 0) continue;
      await process(messages);
    }
  };
  for (let index = 0; index < pollers; index++) world.scheduler.run(poll);
  return stats;
}
