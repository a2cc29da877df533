import type { TimerHandle } from "./scheduler.js";

// A lifecycle action: one hook holding one instance, named by its token. Auto Scaling keeps it; the
// hook's consumers (the service, CodeDeploy's managed launch hook) heartbeat and complete it.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html

export type LifecycleResult = "CONTINUE" | "ABANDON";

/** Who ended an action; `hook-deleted`: DeleteLifecycleHook completed it (ABANDON for a launch). */
export type CompletedBy = "api" | "codedeploy" | "timeout" | "terminated" | "hook-deleted";

/** Where a launch comes from and goes to, as the launch event's `Origin` and `Destination` say. */
export type LaunchPlace = "EC2" | "AutoScalingGroup" | "WarmPool";

export interface LifecycleAction {
  token: string;
  hookName: string;
  groupName: string;
  instanceId: string;
  /**
   * A warm pool makes two launch actions per instance, each with its own token: EC2 to WarmPool when
   * the instance is launched into the pool, WarmPool to AutoScalingGroup when it leaves it
   * (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html).
   */
  origin: LaunchPlace;
  destination: LaunchPlace;
  startedAt: number;
  heartbeatDeadline: number;
  globalDeadline: number;
  heartbeats: number;
  completed?: { result: LifecycleResult; at: number; by: CompletedBy };
  timer?: TimerHandle;
}
