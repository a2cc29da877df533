import type { CompletedBy, LifecycleResult } from "../lifecycle-action.js";

/**
 * The Auto Scaling calls CodeDeploy makes, as the service makes them through the Auto Scaling API (for
 * its managed launch hook); the world hands it the Auto Scaling model, which CodeDeploy knows only as this.
 */
export interface AutoScalingApi {
  putLifecycleHook(input: {
    groupName: string;
    hookName: string;
    transition: string;
    heartbeatTimeout: number;
    defaultResult: LifecycleResult;
  }): unknown;
  completeLifecycleAction(
    input: { groupName: string; hookName: string; token: string; result: LifecycleResult },
    by: CompletedBy,
  ): unknown;
  recordHeartbeat(input: { groupName: string; hookName: string; token: string }): void;
}
