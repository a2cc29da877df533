import { Duration } from "aws-cdk-lib";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { type StackContext, use } from "sst/constructs";
import { sweepEnvironment } from "./environment.js";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { autoScalingReadStatement } from "./permissions.js";
import { createServiceFunction, serviceFunctionName } from "./service-function.js";

/**
 * Sweep: on a schedule, functions/sweep.ts puts instances stuck in Pending:Wait on our hook back on
 * the launch queue (lifecycle events are best effort and can be lost).
 */
export function Sweep({ app, stack }: StackContext) {
  const { config } = use(Foundation);
  const { queue } = use(LaunchPath);
  const { sweep } = config;

  const sweepFunction = createServiceFunction(stack, "SweepFunction", {
    functionName: serviceFunctionName(app.stage, "sweep"),
    handler: "functions/sweep.handler",
    description: "Re-enqueues instances stuck in Pending:Wait on the launch hook",
    timeoutSeconds: sweep.timeoutSeconds,
    memoryMb: sweep.memoryMb,
    config,
    environment: sweepEnvironment(config, { launchQueueUrl: queue.queueUrl }),
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
  // The next run comes within minutes: a failed run is not retried, it shows in the error alarm.
  sweepFunction.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(5) });

  const rule = new Rule(stack, "SweepSchedule", {
    description: "Runs the sweep of instances stuck on the launch hook",
    schedule: Schedule.expression(sweep.schedule),
    enabled: sweep.enabled,
  });
  rule.addTarget(new LambdaFunction(sweepFunction, { retryAttempts: 2, maxEventAge: Duration.minutes(5) }));

  stack.addOutputs({ SweepFunctionName: sweepFunction.functionName });
  return { sweepFunction, rule };
}
