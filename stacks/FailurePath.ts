import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";
import { failureAccess } from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import { createServiceQueue, createServiceRule, sqsEventSource } from "./service-resources.js";
import { wired } from "./wiring.js";

/**
 * Failure path: a failed CodeDeploy deployment of a group in scope invokes
 * functions/deployment-failure.ts asynchronously. Both hops retry on an explicit policy and keep
 * what they could not process in one dead-letter queue: EventBridge when it cannot invoke the
 * function, Lambda when the function keeps failing. A failure the function cannot act on yet (a busy
 * group, a rollback to come) comes back through the retry queue, which the function reads and alone
 * sends to. Every setting comes from the stage's wiring (stacks/wiring.ts).
 */
export function FailurePath({ stack }: StackContext) {
  const { config, wiring, leaseTable, pathResources } = use(Foundation);
  const resources = pathResources();

  const deadLetterQueue = createServiceQueue(stack, "failureDeadLetter", resources);
  const retryQueue = createServiceQueue(stack, "failureRetry", resources);

  const access = failureAccess(stack, config, leaseTable, retryQueue);
  const failureFunction = createServiceFunction(stack, "failure", resources, access);
  for (const source of wiring.sqsSources.filter((candidate) => candidate.function === "failure")) {
    failureFunction.addEventSource(sqsEventSource(source, resources));
  }

  const rule = createServiceRule(stack, wired(wiring.rules.failure, "failure rule", config.stage), resources);

  stack.addOutputs({
    DeploymentFailureFunctionName: failureFunction.functionName,
    FailureDeadLetterQueueUrl: deadLetterQueue.queueUrl,
    FailureRetryQueueUrl: retryQueue.queueUrl,
  });
  return { failureFunction, deadLetterQueue, retryQueue, rule };
}
