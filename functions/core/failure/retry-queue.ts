// Failures the function cannot act on yet come back through the failure retry queue: another
// deployment runs in the group (one at a time per group), CodeDeploy may still create the automatic
// rollback the deployment asked for, or another invocation is working on the same failure. Lambda's own asynchronous retries last about three
// minutes in all, far less than a long deployment; a message re-sent with a delay waits as long as it
// must, up to BUSY_GROUP_RETRY_HOURS, and then the failure is reported as given up.
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { type DeploymentFailureInput, parseFailureRetryMessage } from "../../schemas/deployment-failure.js";
import { parseOrThrow } from "../../schemas/parse.js";
import { SqsBatchSchema } from "../../schemas/sqs.js";
import { sqs } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { callAws, errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import type { FailureConfig } from "../config.js";
import { busyGaveUpReason, type Verdict } from "./policy.js";

/** SendMessage's DelaySeconds: "0 to 900" (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html). */
export const MAX_DELAY_SECONDS = 900;
/** The first look again comes after a minute: a launch deployment or a short rollback may be over by then. */
export const MIN_DELAY_SECONDS = 60;

/** No retry queue is configured: thrown so Lambda's asynchronous retries bring the failure back. */
export class RedeployDeferredError extends Error {
  override name = "RedeployDeferredError";
}

/** Another invocation is working on this failure right now; thrown so this one is retried later. */
export class DeploymentLeaseHeldError extends Error {
  override name = "DeploymentLeaseHeldError";
}

/** A failure on the retry queue: its deployment, and the AWS-time ms the function first saw it. */
export interface RetryMessage {
  deploymentId: string;
  firstSeenAt: number;
}

/** Why the failure waits, and when to look again (default: after half the time waited so far). */
export interface Deferral {
  kind: "busy-group" | "rollback" | "lease-held";
  reason: string;
  afterSeconds?: number;
  /** The AWS error that told (DeploymentLimitExceededException), kept as the thrown error's cause. */
  cause?: unknown;
}

/** Half the time waited so far, between one and fifteen minutes: quick at first, then patient. */
export function retryDelaySeconds(waitedMs: number): number {
  return Math.min(MAX_DELAY_SECONDS, Math.max(MIN_DELAY_SECONDS, Math.round(waitedMs / 2000)));
}

/** Puts the failure back on the retry queue, to be delivered after `delaySeconds`. */
export async function sendRetry(
  queueUrl: string,
  message: RetryMessage,
  delaySeconds: number,
): Promise<void> {
  await callAws("SendMessage", message.deploymentId, () =>
    sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({
          deploymentId: message.deploymentId,
          firstSeenAt: new Date(message.firstSeenAt).toISOString(),
        }),
        DelaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds))),
      }),
    ),
  );
}

/**
 * The failure comes back later through the retry queue (or, with none configured, Lambda's retries);
 * a group busy for longer than BUSY_GROUP_RETRY_HOURS is given up, as a decision, not an error.
 * `lease-held`: another invocation works on this failure right now (a duplicate event, Lambda's
 * async retry of an invocation still running, a retry message while a long upgrade goes on); this
 * one looks again once that invocation is done or its lease has lapsed (it ends at the holder's
 * deadline, so a holder that was cut off never blocks the failure for long). It is never reported as
 * given up while another invocation may still act on it: past the cap, or with no retry queue, it is
 * thrown, so Lambda's retries bring it back.
 */
export async function deferFailure(
  deferral: Deferral,
  message: RetryMessage,
  config: FailureConfig,
): Promise<Verdict> {
  const waitedMs = clock.now() - message.firstSeenAt;
  const waitedTooLong = waitedMs >= config.BUSY_GROUP_RETRY_HOURS * 3_600_000;
  const queueUrl = config.FAILURE_RETRY_QUEUE_URL;
  if (deferral.kind === "lease-held" && (waitedTooLong || !queueUrl)) {
    throw new DeploymentLeaseHeldError(`${deferral.reason}; this one is retried after it finishes`);
  }
  if (deferral.kind === "busy-group" && waitedTooLong) {
    return {
      decision: "GAVE_UP",
      reason: busyGaveUpReason(deferral.reason, message.firstSeenAt, config.BUSY_GROUP_RETRY_HOURS),
    };
  }
  // A dry run changes nothing, its own queue included: it says it would wait.
  if (config.DRY_RUN) {
    return { decision: "DRY_RUN", reason: `Dry run: would wait and look again: ${deferral.reason}.` };
  }
  if (!queueUrl) {
    throw new RedeployDeferredError(`${deferral.reason}; left to Lambda's retries`, {
      cause: deferral.cause,
    });
  }
  const delay = Math.min(MAX_DELAY_SECONDS, deferral.afterSeconds ?? retryDelaySeconds(waitedMs));
  await sendRetry(queueUrl, message, delay);
  return { decision: "DEFERRED", reason: `${deferral.reason}; looking again in ${delay} s.` };
}

export interface RetryBatchReport<R> {
  deployments: R[];
  /** Records that failed validation or processing; they come back and, in the end, reach the DLQ. */
  failedRecords?: { messageId: string; error: string }[];
  /** SQS partial batch response: these messages are redelivered. */
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * Repairs the failure of each record of a retry-queue batch, one after the other. A record that is
 * not a retry message, or whose repair throws, fails alone: it is redelivered after the queue's
 * visibility timeout and reaches the dead-letter queue after maxReceiveCount receives.
 */
export async function repairRetryBatch<R>(
  event: unknown,
  repair: (input: DeploymentFailureInput, messageId: string) => Promise<R>,
): Promise<RetryBatchReport<R>> {
  const batch = parseOrThrow(SqsBatchSchema, event, "SQS batch");
  const deployments: R[] = [];
  const failed: { messageId: string; error: string }[] = [];
  for (const record of batch.Records) {
    try {
      deployments.push(await repair(parseFailureRetryMessage(record.body), record.messageId));
    } catch (error) {
      logger.error("Failure retry record not handled; it comes back", {
        messageId: record.messageId,
        error: errorMessage(error),
      });
      failed.push({ messageId: record.messageId, error: errorMessage(error) });
    }
  }
  return {
    deployments,
    ...(failed.length > 0 ? { failedRecords: failed } : {}),
    batchItemFailures: failed.map((item) => ({ itemIdentifier: item.messageId })),
  };
}
