import type { TimerHandle } from "./scheduler.js";

// A lifecycle action: one hook holding one instance, named by its token. Auto Scaling keeps it; the
// hook's consumers (the service, CodeDeploy's managed launch hook) heartbeat and complete it.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html

export type LifecycleResult = "CONTINUE" | "ABANDON";

export type CompletedBy = "api" | "codedeploy" | "timeout" | "terminated";

export interface LifecycleAction {
  token: string;
  hookName: string;
  groupName: string;
  instanceId: string;
  startedAt: number;
  heartbeatDeadline: number;
  globalDeadline: number;
  heartbeats: number;
  completed?: { result: LifecycleResult; at: number; by: CompletedBy };
  timer?: TimerHandle;
}
