// Launch path entry point. Accepts an SQS batch of launch lifecycle events (what the stack wires),
// one raw EventBridge event (pasted into the Lambda console), or a replay payload
// `{"instanceIds": [...], "autoScalingGroupName": "...", "lifecycleHookName"?: "..."}`.
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { clock } from "./core/common/clock.js";
import { dynamoLease } from "./core/common/lease.js";
import { observability } from "./core/common/powertools.js";
import { loadLaunchConfig } from "./core/config.js";
import { type LaunchReport, reconcileQueueBatch } from "./core/launch/queue.js";
import { type LaunchRequest, reconcileLaunches } from "./core/launch/reconcile.js";
import { parseLaunchInput } from "./schemas/launch-input.js";
import { isObject } from "./schemas/parse.js";

export type { LaunchReport } from "./core/launch/queue.js";

const config = loadLaunchConfig();
const lease = dynamoLease(config.LEASE_TABLE);

export async function handleLaunch(event: unknown, context: Context): Promise<LaunchReport> {
  const deadline = clock.now() + context.getRemainingTimeInMillis() - config.TIME_RESERVE_SECONDS * 1000;
  const reconcile = (requests: LaunchRequest[]) =>
    reconcileLaunches(requests, config, { deadline, correlationId: context.awsRequestId, lease });

  if (isObject(event) && "Records" in event) {
    return reconcileQueueBatch(event, reconcile, {
      queueUrl: config.LAUNCH_QUEUE_URL,
      resumeAfterSeconds: config.RESUME_AFTER_SECONDS,
    });
  }
  const requests = parseLaunchInput(event);
  if (requests === "test-notification") return { instances: [] };
  return { instances: await reconcile(requests) };
}

export const handler = middy(handleLaunch).use(observability());
