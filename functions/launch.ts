// Launch path entry point. Accepts an SQS batch of launch lifecycle events and SSM command events
// (what the stack wires), one raw EventBridge event (pasted into the Lambda console), or a replay
// payload `{"instanceIds": [...], "autoScalingGroupName": "...", "lifecycleHookName"?: "..."}`.
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { clock } from "./core/common/clock.js";
import { observability } from "./core/common/powertools.js";
import { loadLaunchConfig } from "./core/config.js";
import { runUntilDone } from "./core/launch/drivers.js";
import { type LaunchReport, type Reconciled, reconcileQueueBatch } from "./core/launch/queue.js";
import { dynamoStore } from "./core/launch/records.js";
import { stepOnce } from "./core/launch/step.js";
import type { LaunchWork, StepContext } from "./core/launch/types.js";
import { parseCommandSignal } from "./schemas/command-event.js";
import { parseLaunchInput } from "./schemas/launch-input.js";
import { isObject } from "./schemas/parse.js";

export type { LaunchReport } from "./core/launch/queue.js";

const config = loadLaunchConfig();
const store = dynamoStore(config.LEASE_TABLE);

export async function handleLaunch(event: unknown, context: Context): Promise<LaunchReport> {
  const remaining = context.getRemainingTimeInMillis();
  const stepContext: StepContext = {
    store,
    now: () => clock.now(),
    deadline: clock.now() + remaining - config.TIME_RESERVE_SECONDS * 1000,
    heldUntil: clock.now() + remaining,
    correlationId: context.awsRequestId,
  };
  if (isObject(event) && "Records" in event) {
    // "polling": each delivery is followed to its end within the invocation, as a replay is.
    const reconcile = async (work: LaunchWork): Promise<Reconciled> =>
      config.LAUNCH_COMPLETION === "polling"
        ? { instances: await runUntilDone(work, config, stepContext) }
        : stepOnce(work, config, stepContext);
    return reconcileQueueBatch(event, reconcile, config);
  }
  // By hand (the console, a replay): followed to its end within this invocation where it can be.
  const signal = parseCommandSignal(event);
  const requests = signal ? [] : parseLaunchInput(event);
  if (requests === "test-notification") return { instances: [] };
  return {
    instances: await runUntilDone({ requests, signals: signal ? [signal] : [] }, config, stepContext),
  };
}

export const handler = middy(handleLaunch).use(observability());
