import { Duration } from "aws-cdk-lib";
import { CfnLifecycleHook } from "aws-cdk-lib/aws-autoscaling";
import { Rule } from "aws-cdk-lib/aws-events";
import { SqsQueue } from "aws-cdk-lib/aws-events-targets";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import { type StackContext, use } from "sst/constructs";
import { LAUNCH_TRANSITION } from "../functions/core/contract.js";
import { launchEnvironment } from "./environment.js";
import { Foundation } from "./Foundation.js";
import { launchEventPattern } from "./patterns.js";
import {
  autoScalingReadStatement,
  leaseStatement,
  lifecycleActionStatement,
  sendCommandStatements,
  ssmReadStatement,
} from "./permissions.js";
import { createServiceFunction, serviceFunctionName } from "./service-function.js";

/** How long a failed launch message is kept for inspection and redrive (the SQS maximum). */
const DLQ_RETENTION = Duration.days(14);

/**
 * Launch path: our lifecycle hook holds each new instance in Pending:Wait, its EventBridge event
 * goes through an SQS queue (batching a morning scale-out, buffering bursts, keeping unfinished work
 * across invocations) to functions/launch.ts, which installs and verifies the agent and completes
 * the lifecycle action.
 */
export function LaunchPath({ app, stack }: StackContext) {
  const { config, leaseTable } = use(Foundation);
  const { launch, hook } = config;

  const deadLetterQueue = new Queue(stack, "LaunchDeadLetterQueue", {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: DLQ_RETENTION,
  });
  NagSuppressions.addResourceSuppressions(deadLetterQueue, [
    { id: "AwsSolutions-SQS3", reason: "This queue is the dead-letter queue of the launch queue." },
  ]);
  const queue = new Queue(stack, "LaunchQueue", {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // Above the function timeout, so a batch is never redelivered while still being worked on,
    // and below the hook's heartbeat timeout (checked in stacks/config.ts), so a pending instance
    // comes back before its last heartbeat runs out.
    visibilityTimeout: Duration.seconds(launch.visibilityTimeoutSeconds),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: launch.maxReceiveCount },
  });

  const launchFunction = createServiceFunction(stack, "LaunchFunction", {
    functionName: serviceFunctionName(app.stage, "launch"),
    handler: "functions/launch.handler",
    description: "Installs and verifies the CodeDeploy agent on instances held by the launch hook",
    timeoutSeconds: launch.timeoutSeconds,
    memoryMb: launch.memoryMb,
    config,
    environment: launchEnvironment(config, {
      leaseTable: leaseTable.tableName,
      launchQueueUrl: queue.queueUrl,
    }),
    statements: [
      ...sendCommandStatements(stack, config),
      ssmReadStatement(),
      autoScalingReadStatement(["DescribeAutoScalingInstances", "DescribeLifecycleHooks"]),
      lifecycleActionStatement(stack, config),
      leaseStatement(leaseTable.tableArn),
    ],
    wildcards: ["readOnly", "instances", "allGroups"],
  });
  const eventSource = new SqsEventSource(queue, {
    batchSize: launch.batchSize,
    maxBatchingWindow: Duration.seconds(launch.maxBatchingWindowSeconds),
    reportBatchItemFailures: true,
    maxConcurrency: launch.maxConcurrency,
  });
  launchFunction.addEventSource(eventSource);

  const rule = new Rule(stack, "LaunchLifecycleRule", {
    description: `Launch lifecycle actions of the ${hook.name} hook on the groups in scope`,
    eventPattern: launchEventPattern(config.groups, hook.name),
  });
  // Events EventBridge cannot deliver to the queue land in the same DLQ as messages that fail
  // processing: both are launch events, and a redrive sends them all back to the launch queue.
  rule.addTarget(
    new SqsQueue(queue, {
      deadLetterQueue,
      retryAttempts: 185,
      maxEventAge: Duration.hours(24),
    }),
  );

  // Our hook on each group in scope; EventBridge receives its events, so it has no notification
  // target and no role. It is created after the rule and the queue consumer, so no launch that
  // follows its creation goes unseen.
  const hooks: CfnLifecycleHook[] = [];
  if (hook.managedBy === "stack") {
    config.groups.forEach((group, index) => {
      const lifecycleHook = new CfnLifecycleHook(stack, `LaunchHook${index}`, {
        autoScalingGroupName: group,
        lifecycleHookName: hook.name,
        lifecycleTransition: LAUNCH_TRANSITION,
        heartbeatTimeout: hook.heartbeatTimeoutSeconds,
        defaultResult: hook.defaultResult,
      });
      lifecycleHook.node.addDependency(rule, launchFunction);
      hooks.push(lifecycleHook);
    });
  }

  stack.addOutputs({
    LaunchFunctionName: launchFunction.functionName,
    LaunchQueueUrl: queue.queueUrl,
    LaunchDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  });
  return { launchFunction, queue, deadLetterQueue, rule, hooks };
}
