import { createHash } from "node:crypto";
import { Signal } from "./scheduler.js";
import { ACCOUNT_ID, AwsServiceError } from "./service-error.js";
import type { WorldServices } from "./services.js";

export interface QueueSpec {
  name: string;
  visibilityTimeoutSeconds?: number;
  /** Receives after which a message moves to the dead-letter queue (redrive policy). */
  maxReceiveCount?: number;
  deadLetterQueueName?: string;
}

export interface MessageAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

export interface QueueMessage {
  messageId: string;
  body: string;
  md5OfBody: string;
  messageAttributes: Record<string, MessageAttribute>;
  md5OfMessageAttributes?: string;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceivedAt?: number;
  receiptHandle?: string;
  receiptHandles: Set<string>;
}

export interface Queue {
  name: string;
  arn: string;
  visibilityTimeoutSeconds: number;
  maxReceiveCount?: number;
  deadLetterQueueName?: string;
  messages: QueueMessage[];
  /** Woken when a message is sent or becomes visible again. */
  arrivals: Signal;
  sent: number;
  movedToDeadLetter: number;
}

export const md5 = (text: string | Buffer): string => createHash("md5").update(text).digest("hex");

/**
 * MD5OfMessageAttributes as SQS computes it (the SDK checks it):
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation
 */
export function md5OfMessageAttributes(attributes: Record<string, MessageAttribute>): string | undefined {
  const names = Object.keys(attributes).sort();
  if (names.length === 0) return undefined;
  const parts: Buffer[] = [];
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of names) {
    const attribute = attributes[name]!;
    lengthPrefixed(Buffer.from(name, "utf8"));
    lengthPrefixed(Buffer.from(attribute.DataType, "utf8"));
    if (attribute.BinaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      lengthPrefixed(Buffer.from(attribute.BinaryValue, "base64"));
    } else {
      parts.push(Buffer.from([1]));
      lengthPrefixed(Buffer.from(attribute.StringValue ?? "", "utf8"));
    }
  }
  return md5(Buffer.concat(parts));
}

/** Standard SQS queues held in memory, with visibility timeouts and dead-letter redrive. */
export class SqsModel {
  readonly queues = new Map<string, Queue>();
  private messageCounter = 0;

  constructor(
    private readonly world: WorldServices,
    /** Base URL of the protocol server serving the world (queue URLs point at it). */
    private readonly endpoint: () => string,
  ) {}

  createQueue(spec: QueueSpec): Queue {
    const queue: Queue = {
      name: spec.name,
      arn: `arn:aws:sqs:${this.world.region}:${ACCOUNT_ID}:${spec.name}`,
      visibilityTimeoutSeconds: spec.visibilityTimeoutSeconds ?? 30,
      maxReceiveCount: spec.maxReceiveCount,
      deadLetterQueueName: spec.deadLetterQueueName,
      messages: [],
      arrivals: new Signal(),
      sent: 0,
      movedToDeadLetter: 0,
    };
    this.queues.set(spec.name, queue);
    return queue;
  }

  queueUrl(name: string): string {
    return `${this.endpoint()}/${ACCOUNT_ID}/${name}`;
  }

  /** Resolves a queue URL (any host) by its `/<account>/<name>` path. */
  queueByUrl(url: string | undefined): Queue {
    const match = /\/(\d{12})\/([^/?#]+)\/?$/.exec(url ?? "");
    const queue = match && match[1] === ACCOUNT_ID ? this.queues.get(match[2]!) : undefined;
    if (!queue) throw new AwsServiceError("QueueDoesNotExist", "The specified queue does not exist.");
    return queue;
  }

  queue(name: string): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw new AwsServiceError("QueueDoesNotExist", "The specified queue does not exist.");
    return queue;
  }

  sendMessage(
    queue: Queue,
    body: string,
    options: { delaySeconds?: number; messageAttributes?: Record<string, MessageAttribute> } = {},
  ): QueueMessage {
    if (body.length === 0)
      throw new AwsServiceError("MissingParameter", "The request must contain the parameter MessageBody.");
    if (Buffer.byteLength(body) > 262_144) {
      throw new AwsServiceError(
        "InvalidParameterValue",
        "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.",
      );
    }
    const delay = options.delaySeconds ?? 0;
    if (delay < 0 || delay > 900) {
      throw new AwsServiceError(
        "InvalidParameterValue",
        `Value ${delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.`,
      );
    }
    const now = this.world.now();
    const attributes = options.messageAttributes ?? {};
    const message: QueueMessage = {
      messageId: this.world.rng.fork(`message:${this.messageCounter++}`).uuid(),
      body,
      md5OfBody: md5(body),
      messageAttributes: attributes,
      md5OfMessageAttributes: md5OfMessageAttributes(attributes),
      sentAt: now,
      visibleAt: now + delay * 1000,
      receiveCount: 0,
      receiptHandles: new Set(),
    };
    queue.messages.push(message);
    queue.sent++;
    if (delay > 0) this.world.scheduler.after(delay * 1000, () => queue.arrivals.notify());
    else queue.arrivals.notify();
    return message;
  }

  /** Takes up to `max` visible messages, hiding each for the visibility timeout. */
  receive(
    queue: Queue,
    max: number,
    visibilityTimeoutSeconds = queue.visibilityTimeoutSeconds,
  ): QueueMessage[] {
    const now = this.world.now();
    const taken: QueueMessage[] = [];
    for (const message of [...queue.messages]) {
      if (taken.length >= max) break;
      if (message.visibleAt > now) continue;
      if (
        queue.maxReceiveCount !== undefined &&
        message.receiveCount >= queue.maxReceiveCount &&
        queue.deadLetterQueueName
      ) {
        // Redrive happens when a message that has used up its receives would be received again.
        this.remove(queue, message);
        const deadLetter = this.queue(queue.deadLetterQueueName);
        deadLetter.messages.push({ ...message, visibleAt: now, receiveCount: 0, receiptHandles: new Set() });
        deadLetter.sent++;
        deadLetter.arrivals.notify();
        queue.movedToDeadLetter++;
        this.world.trace.record({
          at: now,
          kind: "sqs.dead-letter",
          message: `message ${message.messageId} moved to ${deadLetter.name}`,
          data: { body: message.body },
        });
        continue;
      }
      message.receiveCount++;
      message.firstReceivedAt ??= now;
      message.visibleAt = now + visibilityTimeoutSeconds * 1000;
      message.receiptHandle = `${message.messageId}#${message.receiveCount}#${this.world.rng.fork(`receipt:${message.messageId}:${message.receiveCount}`).hex(16)}`;
      message.receiptHandles.add(message.receiptHandle);
      this.world.scheduler.after(visibilityTimeoutSeconds * 1000, () => queue.arrivals.notify());
      taken.push(message);
    }
    return taken;
  }

  deleteMessage(queue: Queue, receiptHandle: string): void {
    const message = queue.messages.find((candidate) => candidate.receiptHandles.has(receiptHandle));
    if (!message) {
      if (!/^[^#]+#\d+#[0-9a-f]+$/.test(receiptHandle)) {
        throw new AwsServiceError(
          "ReceiptHandleIsInvalid",
          `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
        );
      }
      return;
    }
    this.remove(queue, message);
  }

  changeVisibility(queue: Queue, receiptHandle: string, seconds: number): void {
    const message = queue.messages.find((candidate) => candidate.receiptHandle === receiptHandle);
    if (!message)
      throw new AwsServiceError("MessageNotInflight", "The message referred to is not in flight.");
    message.visibleAt = this.world.now() + seconds * 1000;
    this.world.scheduler.after(seconds * 1000, () => queue.arrivals.notify());
  }

  /** The earliest time a hidden message becomes visible, or undefined when none is hidden. */
  nextVisibleAt(queue: Queue): number | undefined {
    let next: number | undefined;
    for (const message of queue.messages)
      if (next === undefined || message.visibleAt < next) next = message.visibleAt;
    return next;
  }

  private remove(queue: Queue, message: QueueMessage): void {
    const index = queue.messages.indexOf(message);
    if (index >= 0) queue.messages.splice(index, 1);
  }
}
