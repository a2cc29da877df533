import { AwsServiceError } from "../world/service-error.js";
import type { MessageAttribute } from "../world/sqs.js";
import { asNumber, asRecords, asString, type Operation } from "./operation.js";

export const sqsOperations: Record<string, Operation> = {
  SendMessage(input, { world }) {
    const queue = world.sqs.queueByUrl(asString(input.QueueUrl));
    const message = world.sqs.sendMessage(queue, asString(input.MessageBody) ?? "", {
      delaySeconds: asNumber(input.DelaySeconds),
      messageAttributes: input.MessageAttributes as Record<string, MessageAttribute> | undefined,
    });
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: message.md5OfBody,
      MD5OfMessageAttributes: message.md5OfMessageAttributes,
    };
  },

  SendMessageBatch(input, { world }) {
    const queue = world.sqs.queueByUrl(asString(input.QueueUrl));
    const entries = asRecords(input.Entries);
    if (entries.length === 0)
      throw new AwsServiceError(
        "EmptyBatchRequest",
        "There should be at least one SendMessageBatchRequestEntry in the request.",
      );
    if (entries.length > 10) {
      throw new AwsServiceError(
        "TooManyEntriesInBatchRequest",
        `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
      );
    }
    const ids = entries.map((entry) => asString(entry.Id) ?? "");
    if (new Set(ids).size !== ids.length)
      throw new AwsServiceError("BatchEntryIdsNotDistinct", "Id must be distinct among batch entries.");
    const size = entries.reduce(
      (sum, entry) => sum + Buffer.byteLength(asString(entry.MessageBody) ?? ""),
      0,
    );
    if (size > 262_144) {
      throw new AwsServiceError(
        "BatchRequestTooLong",
        `Batch requests cannot be longer than 262144 bytes. You have sent ${size} bytes.`,
      );
    }
    const successful: Record<string, unknown>[] = [];
    const failed: Record<string, unknown>[] = [];
    for (const entry of entries) {
      try {
        const message = world.sqs.sendMessage(queue, asString(entry.MessageBody) ?? "", {
          delaySeconds: asNumber(entry.DelaySeconds),
          messageAttributes: entry.MessageAttributes as Record<string, MessageAttribute> | undefined,
        });
        successful.push({
          Id: entry.Id,
          MessageId: message.messageId,
          MD5OfMessageBody: message.md5OfBody,
          MD5OfMessageAttributes: message.md5OfMessageAttributes,
        });
      } catch (error) {
        if (!(error instanceof AwsServiceError)) throw error;
        failed.push({ Id: entry.Id, SenderFault: true, Code: error.code, Message: error.message });
      }
    }
    return { Successful: successful, Failed: failed };
  },

  ReceiveMessage(input, { world }) {
    const queue = world.sqs.queueByUrl(asString(input.QueueUrl));
    const max = asNumber(input.MaxNumberOfMessages) ?? 1;
    if (max < 1 || max > 10) {
      throw new AwsServiceError(
        "InvalidParameterValue",
        `Value ${max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.`,
      );
    }
    const messages = world.sqs.receive(queue, max, asNumber(input.VisibilityTimeout));
    return {
      Messages: messages.map((message) => ({
        MessageId: message.messageId,
        ReceiptHandle: message.receiptHandle,
        MD5OfBody: message.md5OfBody,
        Body: message.body,
        Attributes: {
          ApproximateReceiveCount: String(message.receiveCount),
          SentTimestamp: String(Math.floor(message.sentAt)),
          ApproximateFirstReceiveTimestamp: String(Math.floor(message.firstReceivedAt ?? message.sentAt)),
        },
        MessageAttributes:
          Object.keys(message.messageAttributes).length > 0 ? message.messageAttributes : undefined,
        MD5OfMessageAttributes: message.md5OfMessageAttributes,
      })),
    };
  },

  DeleteMessage(input, { world }) {
    world.sqs.deleteMessage(
      world.sqs.queueByUrl(asString(input.QueueUrl)),
      asString(input.ReceiptHandle) ?? "",
    );
    return {};
  },

  ChangeMessageVisibility(input, { world }) {
    const seconds = asNumber(input.VisibilityTimeout);
    if (seconds === undefined || seconds < 0 || seconds > 43_200) {
      throw new AwsServiceError(
        "InvalidParameterValue",
        `Value ${String(input.VisibilityTimeout)} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.`,
      );
    }
    world.sqs.changeVisibility(
      world.sqs.queueByUrl(asString(input.QueueUrl)),
      asString(input.ReceiptHandle) ?? "",
      seconds,
    );
    return {};
  },

  GetQueueUrl(input, { world }) {
    const queue = world.sqs.queue(asString(input.QueueName) ?? "");
    return { QueueUrl: world.sqs.queueUrl(queue.name) };
  },

  GetQueueAttributes(input, { world }) {
    const queue = world.sqs.queueByUrl(asString(input.QueueUrl));
    const now = world.now();
    return {
      Attributes: {
        QueueArn: queue.arn,
        VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
        ApproximateNumberOfMessages: String(
          queue.messages.filter((message) => message.visibleAt <= now).length,
        ),
        ApproximateNumberOfMessagesNotVisible: String(
          queue.messages.filter((message) => message.visibleAt > now).length,
        ),
        ...(queue.deadLetterQueueName
          ? {
              RedrivePolicy: JSON.stringify({
                deadLetterTargetArn: world.sqs.queue(queue.deadLetterQueueName).arn,
                maxReceiveCount: queue.maxReceiveCount,
              }),
            }
          : {}),
      },
    };
  },
};
