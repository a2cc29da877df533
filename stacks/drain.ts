import { CustomResource, Lazy, Stack } from "aws-cdk-lib";
import type { CfnLifecycleHook } from "aws-cdk-lib/aws-autoscaling";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import { ALL } from "../functions/core/contract.js";
import type { StageConfig } from "./config.js";
import { deployTimeFunction } from "./deploy-time-function.js";
import { autoScalingReadStatement, groupArns, WILDCARD_EVIDENCE } from "./permissions.js";
import type { FunctionCode } from "./service-resources.js";

/** The custom resource type of a hook's drain, as it shows in CloudFormation's events. */
export const DRAIN_RESOURCE_TYPE = "Custom::LifecycleHookDrain";

/**
 * A drain per hook (functions/drain-hook.ts): deleting a lifecycle hook completes the launches waiting
 * on it with ABANDON, so before CloudFormation deletes one of our hooks (a group removed from
 * `groups`, the stage removed) its drain completes them with CONTINUE. Each drain depends on its
 * hook: CloudFormation deletes dependents first, so the drain's Delete runs while the hook still
 * exists, and the hook's deletion finds nothing left to abandon.
 */
export function hookDrains(
  scope: Construct,
  config: StageConfig,
  hooks: readonly CfnLifecycleHook[],
  code: FunctionCode,
): CustomResource[] {
  if (hooks.length === 0) return [];
  const stack = Stack.of(scope);
  const fn = deployTimeFunction(scope, {
    config,
    code,
    name: "drain-hook",
    prefix: "DrainHook",
    policyName: "DrainHook",
    roleDescription: "Completes the launches waiting on a hook with CONTINUE before the hook is deleted",
    description:
      "Completes the launches waiting on one of our hooks with CONTINUE before the hook is deleted",
    timeoutSeconds: 120,
    statements: [
      // The group's instances, and its warm pool's: a launch into the pool waits on the hook too.
      autoScalingReadStatement(["DescribeAutoScalingGroups", "DescribeWarmPool"]),
      // Not only the groups the stage names now: a group leaves `groups` in the same update that
      // deletes its hook, and CloudFormation updates this policy before it deletes the drain. Pinned
      // to the stage's groups, the drain of a removed group would be refused and the hook's deletion
      // would abandon the launches it holds.
      new PolicyStatement({
        sid: "CompleteLifecycleActionsOfOurHooks",
        effect: Effect.ALLOW,
        actions: ["autoscaling:CompleteLifecycleAction"],
        resources: groupArns(stack, [ALL]),
      }),
    ],
  });
  // A group's ARN has a generated id (`autoScalingGroup:*:`) that no policy can pin.
  const wildcards = ["readOnly", "drainedGroups"] as const;
  NagSuppressions.addResourceSuppressions(
    fn.role ?? fn,
    wildcards.map((kind) => ({
      id: "AwsSolutions-IAM5",
      reason: WILDCARD_EVIDENCE[kind].reason,
      appliesTo: [WILDCARD_EVIDENCE[kind].appliesTo],
    })),
    true,
  );
  return hooks.map((hook) => {
    const drain = new CustomResource(scope, `${hook.node.id}-Drain`, {
      serviceToken: fn.functionArn,
      resourceType: DRAIN_RESOURCE_TYPE,
      // Read at synth: the drain names its hook's group and name as the hook ends up with them (the
      // release gives each slot's hook its group after the construct is built).
      properties: {
        AutoScalingGroupName: Lazy.string({ produce: () => hook.autoScalingGroupName }),
        LifecycleHookName: Lazy.string({ produce: () => hook.lifecycleHookName }),
      },
    });
    // Deleted before the hook: the drain runs while the hook still holds its launches.
    drain.node.addDependency(hook);
    return drain;
  });
}
