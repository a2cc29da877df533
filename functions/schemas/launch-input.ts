import { EventValidationError } from "../core/common/errors.js";
import { LAUNCH_DETAIL_TYPE } from "../core/contract.js";
import type { LaunchRequest } from "../core/launch/types.js";
import {
  LaunchLifecycleEventSchema,
  LaunchReplaySchema,
  LifecycleNotificationSchema,
  TestNotificationSchema,
} from "./launch-event.js";
import { isObject, parseOrThrow } from "./parse.js";

/**
 * Tells the launch function's single-event inputs apart (EventBridge event, SNS/SQS lifecycle
 * notification, test notification, replay payload) and turns each into instance requests. Used by
 * the handler for each input and each SQS record, and by `npm run replay` to check an event file.
 */
export function parseLaunchInput(input: unknown): LaunchRequest[] | "test-notification" {
  if (!isObject(input)) {
    throw new EventValidationError(
      `Invalid launch input: expected a JSON object (an "${LAUNCH_DETAIL_TYPE}" event, an SQS batch, or {"instanceIds":[...],"autoScalingGroupName":"..."})`,
      ["(root)"],
    );
  }
  if ("detail-type" in input || "detail" in input) {
    const event = parseOrThrow(LaunchLifecycleEventSchema, input, `${LAUNCH_DETAIL_TYPE} event`);
    const { detail } = event;
    return [
      {
        instanceId: detail.EC2InstanceId,
        group: detail.AutoScalingGroupName,
        hook: detail.LifecycleHookName,
        token: detail.LifecycleActionToken,
        transition: detail.LifecycleTransition,
        origin: detail.Origin,
        destination: detail.Destination,
        startedAt: parseTime(event.time),
        source: "event",
      },
    ];
  }
  if ("Event" in input) {
    parseOrThrow(TestNotificationSchema, input, "Auto Scaling test notification");
    return "test-notification";
  }
  if ("LifecycleTransition" in input || "EC2InstanceId" in input) {
    const notification = parseOrThrow(LifecycleNotificationSchema, input, "lifecycle notification");
    return [
      {
        instanceId: notification.EC2InstanceId,
        group: notification.AutoScalingGroupName,
        hook: notification.LifecycleHookName,
        token: notification.LifecycleActionToken,
        transition: notification.LifecycleTransition,
        origin: notification.Origin,
        destination: notification.Destination,
        startedAt: parseTime(notification.Time),
        source: "event",
      },
    ];
  }
  const replay = parseOrThrow(LaunchReplaySchema, input, "launch replay payload");
  const startedAt = parseTime(replay.lifecycleActionStartedAt);
  return replay.instanceIds.map((instanceId) => ({
    instanceId,
    group: replay.autoScalingGroupName,
    hook: replay.lifecycleHookName,
    ...(startedAt !== undefined ? { startedAt } : {}),
    ...(replay.origin ? { origin: replay.origin } : {}),
    ...(replay.ifEventLost ? { ifEventLost: true } : {}),
    source: replay.source === "sweep" ? "sweep" : "replay",
  }));
}

function parseTime(value: string | undefined): number | undefined {
  const time = Date.parse(value ?? "");
  return Number.isNaN(time) ? undefined : time;
}
