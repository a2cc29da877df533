import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { autoScalingReadStatement } from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import { createServiceRule, type StackResources } from "./service-resources.js";

/**
 * Sweep: on a schedule, functions/sweep.ts puts instances stuck in Pending:Wait on our hook back on
 * the launch queue (lifecycle events are best effort and can be lost). Every setting comes from the
 * stage's wiring (stacks/wiring.ts).
 */
export function Sweep({ stack }: StackContext) {
  const { config, wiring } = use(Foundation);
  const { queue } = use(LaunchPath);
  const resources: StackResources = { queues: { launch: queue }, functions: {} };

  const sweepFunction = createServiceFunction(stack, wiring.functions.sweep, {
    config,
    resources,
    statements: [
      autoScalingReadStatement([
        "DescribeAutoScalingGroups",
        "DescribeLifecycleHooks",
        "DescribeScalingActivities",
        "DescribeWarmPool",
      ]),
      // SendMessageBatch is authorized as sqs:SendMessage.
      new PolicyStatement({
        sid: "EnqueueReplays",
        effect: Effect.ALLOW,
        actions: ["sqs:SendMessage"],
        resources: [queue.queueArn],
      }),
    ],
    wildcards: ["readOnly"],
  });
  resources.functions.sweep = sweepFunction;

  const rule = createServiceRule(stack, wiring.rules.sweep, resources);

  stack.addOutputs({ SweepFunctionName: sweepFunction.functionName });
  return { sweepFunction, rule };
}
