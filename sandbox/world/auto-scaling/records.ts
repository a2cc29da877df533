import type { ImageProfile, Instance } from "../instances.js";
import type { LifecycleResult } from "../lifecycle-action.js";
import type { Distribution } from "../random.js";
import type { TimerHandle } from "../scheduler.js";
import { AwsServiceError } from "../service-error.js";

// What EC2 Auto Scaling keeps: groups with their hooks, and the scaling activities.

export interface LifecycleHook {
  name: string;
  groupName: string;
  transition: string;
  heartbeatTimeout: number;
  defaultResult: LifecycleResult;
  globalTimeout: number;
  notificationMetadata?: string;
  notificationTargetArn?: string;
  roleArn?: string;
}

export interface ScalingActivity {
  ActivityId: string;
  AutoScalingGroupName: string;
  AutoScalingGroupARN: string;
  Description: string;
  Cause: string;
  StartTime: number;
  EndTime?: number;
  StatusCode: string;
  StatusMessage?: string;
  Progress: number;
  Details: string;
  instanceId?: string;
}

export type WarmPoolState = "Stopped" | "Running" | "Hibernated";

/**
 * A warm pool beside a group: instances launched ahead of need, taken through the launch hooks once
 * on the way in (Warmed:Pending:Wait) and stopped (or kept running, or hibernated) until a scale-out
 * draws them into the group, through the launch hooks again (Pending:Wait).
 * https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html
 */
export interface WarmPool {
  minSize: number;
  /**
   * Instances allowed in the pool and the group together; undefined: the group's maximum size ("If a
   * value for MaxGroupPreparedCapacity is not specified, Amazon EC2 Auto Scaling launches and
   * maintains the difference between the group's maximum capacity and its desired capacity").
   */
  maxGroupPreparedCapacity?: number;
  poolState: WarmPoolState;
  /** The pool's instances (warming, warmed, or on their way out), by id. */
  instances: Set<string>;
}

export interface WarmPoolSpec {
  minSize?: number;
  /** -1 (or left out): the group's maximum size. */
  maxGroupPreparedCapacity?: number;
  /** Stopped (default), Running or Hibernated; anything else is refused as AWS refuses it. */
  poolState?: string;
}

export interface AutoScalingGroup {
  name: string;
  arn: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  createdAt: number;
  image: ImageProfile;
  availabilityZones: string[];
  hooks: Map<string, LifecycleHook>;
  /** The group's own instances (a warm pool's are the pool's until they leave it). */
  instances: Set<string>;
  warmPool?: WarmPool;
  tags: Record<string, string>;
  /** Consecutive launches that ended abandoned: Auto Scaling slows down relaunching. */
  consecutiveFailures: number;
  nextLaunchAt: number;
  launchTimer?: TimerHandle;
  lastCapacityCause?: string;
}

export interface GroupSpec {
  name: string;
  image: ImageProfile;
  minSize?: number;
  maxSize?: number;
  desiredCapacity?: number;
  availabilityZones?: string[];
  tags?: Record<string, string>;
  warmPool?: WarmPoolSpec;
}

export interface AutoScalingOptions {
  /** AWS seconds from launch to the lifecycle hook's Pending:Wait. */
  bootSeconds?: Distribution;
  /** AWS seconds from Pending:Proceed to InService. */
  proceedSeconds?: Distribution;
  /** AWS seconds Terminating lasts. */
  terminateSeconds?: Distribution;
  /** First relaunch delay after a failed launch, doubled per consecutive failure, capped at 300 s. */
  relaunchBackoffSeconds?: number;
}

/** The group an API call names, or the ValidationError AWS answers for a missing one. */
export function findGroup(groups: ReadonlyMap<string, AutoScalingGroup>, name: string): AutoScalingGroup {
  const group = groups.get(name);
  if (!group)
    throw new AwsServiceError(
      "ValidationError",
      `AutoScalingGroup name not found - AutoScalingGroup ${name} not found`,
    );
  return group;
}

/** Moves the instance to an Auto Scaling lifecycle state, waking whoever watches it. */
export function setLifecycleState(instance: Instance, state: string): void {
  instance.lifecycleState = state;
  instance.changed.notify();
}
