import * as z from "zod";
import { AUTOSCALING_SOURCE, LAUNCH_DETAIL_TYPE } from "../core/contract.js";
import { EventBridgeSchema } from "./eventbridge.js";

/**
 * Inputs of the launch function. Shapes follow the Auto Scaling event reference
 * (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html) and the
 * warm-pool events (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html).
 */
export const INSTANCE_ID = z
  .string()
  .regex(/^i-[0-9a-f]{8,17}$/, "an EC2 instance id such as i-0123456789abcdef0");
const GROUP_NAME = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^:\s]/, "an Auto Scaling group name");
const HOOK_NAME = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9\-_/]+$/, "a lifecycle hook name");
const LOCATION = z.enum(["EC2", "AutoScalingGroup", "WarmPool"]);

const lifecycleDetail = z.object({
  LifecycleActionToken: z.string().min(1).max(36),
  AutoScalingGroupName: GROUP_NAME,
  LifecycleHookName: HOOK_NAME,
  EC2InstanceId: INSTANCE_ID,
  LifecycleTransition: z.string().min(1).max(100),
  NotificationMetadata: z.string().max(4000).optional(),
  // Present only "if that information is available".
  Origin: LOCATION.optional(),
  Destination: LOCATION.optional(),
});

/** The EventBridge event, as delivered by the rule or pasted into the Lambda console. */
export const LaunchLifecycleEventSchema = EventBridgeSchema.extend({
  source: z.literal(AUTOSCALING_SOURCE),
  "detail-type": z.literal(LAUNCH_DETAIL_TYPE),
  // The documentation's sample carries a placeholder time; a missing or odd time only costs the
  // elapsed-time figure, so it is not a reason to refuse the event.
  time: z.string(),
  detail: lifecycleDetail,
});

/** The same action as sent to an SNS or SQS notification target (a hook wired without EventBridge). */
export const LifecycleNotificationSchema = lifecycleDetail.extend({
  Service: z.string().optional(),
  Time: z.string().optional(),
  RequestId: z.string().optional(),
  AccountId: z.string().optional(),
});

/** Sent once when a hook with an SNS/SQS target is created; nothing to do. */
export const TestNotificationSchema = z.object({
  Event: z.literal("autoscaling:TEST_NOTIFICATION"),
  AutoScalingGroupName: z.string().optional(),
});

/** Reconcile these instances now: from an operator, or from the sweep. */
export const LaunchReplaySchema = z
  .object({
    instanceIds: z.array(INSTANCE_ID).min(1).max(500),
    autoScalingGroupName: GROUP_NAME,
    lifecycleHookName: HOOK_NAME.optional(),
    /** When the lifecycle action began; looked up from the group's scaling activities when absent. */
    lifecycleActionStartedAt: z.iso.datetime({ offset: true }).optional(),
    /** "WarmPool" for an instance leaving the warm pool; looked up like the start time when absent. */
    origin: z.literal("WarmPool").optional(),
    source: z.enum(["operator", "sweep"]).optional(),
    /** Nothing to do once the launch's event came (its record has the token): the sweep's look-ahead at a launch too young to call lost. */
    ifEventLost: z.boolean().optional(),
  })
  .strict();

export type LaunchLifecycleEvent = z.infer<typeof LaunchLifecycleEventSchema>;
export type LifecycleNotification = z.infer<typeof LifecycleNotificationSchema>;
export type LaunchReplay = z.infer<typeof LaunchReplaySchema>;
