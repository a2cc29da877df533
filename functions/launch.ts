// Launch path entry point. Accepts an SQS batch of launch lifecycle events and SSM command events
// (what the stack wires), one raw EventBridge event (pasted into the Lambda console), or a replay
// payload `{"instanceIds": [...], "autoScalingGroupName": "...", "lifecycleHookName"?: "..."}`.
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { clock } from "./core/common/clock.js";
import { dynamoLease } from "./core/common/lease.js";
import { observability } from "./core/common/powertools.js";
import { loadLaunchConfig } from "./core/config.js";
import { advanceLaunches } from "./core/launch/advance.js";
import { advanceByHand } from "./core/launch/by-hand.js";
import {
  type LaunchReport,
  type LaunchWork,
  type Reconciled,
  reconcileQueueBatch,
} from "./core/launch/queue.js";
import { reconcileLaunches } from "./core/launch/reconcile.js";
import { dynamoBook } from "./core/launch/records.js";
import { parseCommandSignal } from "./schemas/command-event.js";
import { parseLaunchInput } from "./schemas/launch-input.js";
import { isObject } from "./schemas/parse.js";

export type { LaunchReport } from "./core/launch/queue.js";

const config = loadLaunchConfig();
const lease = dynamoLease(config.LEASE_TABLE);
const book = dynamoBook(config.LEASE_TABLE);
// A dry run sends nothing and completes at once, so it needs no events to wait for.
const stepByStep = config.LAUNCH_COMPLETION === "events" && !config.DRY_RUN;

export async function handleLaunch(event: unknown, context: Context): Promise<LaunchReport> {
  const deadline = clock.now() + context.getRemainingTimeInMillis() - config.TIME_RESERVE_SECONDS * 1000;
  const leaseUntil = clock.now() + context.getRemainingTimeInMillis();
  const launchContext = { deadline, correlationId: context.awsRequestId, lease };
  const reconcile = async (work: LaunchWork): Promise<Reconciled> =>
    stepByStep
      ? advanceLaunches(work, config, { ...launchContext, book, leaseUntil })
      : { instances: await reconcileLaunches(work.requests, config, launchContext) };

  if (isObject(event) && "Records" in event) {
    return reconcileQueueBatch(event, reconcile, {
      queueUrl: config.LAUNCH_QUEUE_URL,
      resumeAfterSeconds: config.RESUME_AFTER_SECONDS,
    });
  }
  // By hand (the console, a replay): followed to its end within this invocation where it can be.
  const signal = parseCommandSignal(event);
  const requests = signal ? [] : parseLaunchInput(event);
  if (requests === "test-notification") return { instances: [] };
  const work = { requests, signals: signal ? [signal] : [] };
  if (!stepByStep) return { instances: (await reconcile(work)).instances };
  return { instances: await advanceByHand(work, config, { ...launchContext, book, leaseUntil }) };
}

export const handler = middy(handleLaunch).use(observability());
