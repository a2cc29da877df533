import { type StackContext, use } from "sst/constructs";
import { hookDrains } from "./drain.js";
import { Foundation } from "./Foundation.js";
import { launchAccess } from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import {
  createLifecycleHooks,
  createServiceQueue,
  createServiceRule,
  sqsEventSource,
} from "./service-resources.js";
import { wired } from "./wiring.js";

/**
 * Launch path: our lifecycle hook holds each new instance in Pending:Wait, its EventBridge event
 * goes through an SQS queue (batching a morning scale-out, buffering bursts, keeping unfinished work
 * across invocations) to functions/launch.ts, which installs and verifies the agent and completes
 * the lifecycle action. Every setting comes from the stage's wiring (stacks/wiring.ts).
 */
export function LaunchPath({ stack }: StackContext) {
  const { config, wiring, leaseTable, pathResources } = use(Foundation);
  const resources = pathResources();

  const deadLetterQueue = createServiceQueue(stack, "launchDeadLetter", resources);
  const queue = createServiceQueue(stack, "launch", resources);

  const launchFunction = createServiceFunction(
    stack,
    "launch",
    resources,
    launchAccess(stack, config, leaseTable, queue),
  );
  for (const source of wiring.sqsSources.filter((candidate) => candidate.function === "launch")) {
    launchFunction.addEventSource(sqsEventSource(source, resources));
  }

  const rule = createServiceRule(stack, wired(wiring.rules.launch, "launch rule", config.stage), resources);
  const installEndedRule = createServiceRule(
    stack,
    wired(wiring.rules.commandEnded, "launch rule", config.stage),
    resources,
  );
  const hooks = createLifecycleHooks(stack, wiring.lifecycleHooks, [rule, launchFunction]);
  // Before a hook is deleted, its waiting launches are completed with CONTINUE (not abandoned).
  const drains = hookDrains(stack, config, hooks);

  stack.addOutputs({
    LaunchFunctionName: launchFunction.functionName,
    LaunchQueueUrl: queue.queueUrl,
    LaunchDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  });
  return { launchFunction, queue, deadLetterQueue, rule, installEndedRule, hooks, drains };
}
