import { NagSuppressions } from "cdk-nag";
import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";
import {
  autoScalingReadStatement,
  leaseStatement,
  lifecycleActionStatement,
  sendCommandStatements,
  ssmReadStatement,
} from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import {
  createLifecycleHooks,
  createServiceQueue,
  createServiceRule,
  type StackResources,
  sqsEventSource,
} from "./service-resources.js";

/**
 * Launch path: our lifecycle hook holds each new instance in Pending:Wait, its EventBridge event
 * goes through an SQS queue (batching a morning scale-out, buffering bursts, keeping unfinished work
 * across invocations) to functions/launch.ts, which installs and verifies the agent and completes
 * the lifecycle action. Every setting comes from the stage's wiring (stacks/wiring.ts).
 */
export function LaunchPath({ stack }: StackContext) {
  const { config, wiring, leaseTable } = use(Foundation);
  const resources: StackResources = { leaseTable, queues: {}, functions: {} };

  const deadLetterQueue = createServiceQueue(stack, wiring.queues.launchDeadLetter, resources);
  NagSuppressions.addResourceSuppressions(deadLetterQueue, [
    { id: "AwsSolutions-SQS3", reason: "This queue is the dead-letter queue of the launch queue." },
  ]);
  resources.queues.launchDeadLetter = deadLetterQueue;
  const queue = createServiceQueue(stack, wiring.queues.launch, resources);
  resources.queues.launch = queue;

  const launchFunction = createServiceFunction(stack, wiring.functions.launch, {
    config,
    resources,
    statements: [
      ...sendCommandStatements(stack, config),
      ssmReadStatement(),
      autoScalingReadStatement(["DescribeAutoScalingInstances", "DescribeLifecycleHooks"]),
      lifecycleActionStatement(stack, config),
      leaseStatement(leaseTable.tableArn),
    ],
    wildcards: ["readOnly", "instances", "allGroups"],
  });
  resources.functions.launch = launchFunction;
  for (const source of wiring.sqsSources.filter((candidate) => candidate.function === "launch")) {
    launchFunction.addEventSource(sqsEventSource(source, resources));
  }

  const rule = createServiceRule(stack, wiring.rules.launch, resources);
  const hooks = createLifecycleHooks(stack, wiring.lifecycleHooks, [rule, launchFunction]);

  stack.addOutputs({
    LaunchFunctionName: launchFunction.functionName,
    LaunchQueueUrl: queue.queueUrl,
    LaunchDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  });
  return { launchFunction, queue, deadLetterQueue, rule, hooks };
}
