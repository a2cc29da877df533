import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";
import { failureAccess } from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import { createServiceQueue, createServiceRule } from "./service-resources.js";

/**
 * Failure path: a failed CodeDeploy deployment of a group in scope invokes
 * functions/deployment-failure.ts asynchronously. Both hops retry on an explicit policy and keep
 * what they could not process in one dead-letter queue: EventBridge when it cannot invoke the
 * function, Lambda when the function keeps failing. Every setting comes from the stage's wiring
 * (stacks/wiring.ts).
 */
export function FailurePath({ stack }: StackContext) {
  const { config, wiring, leaseTable, pathResources } = use(Foundation);
  const resources = pathResources();

  const deadLetterQueue = createServiceQueue(stack, "failureDeadLetter", resources);

  const access = failureAccess(stack, config, leaseTable);
  const failureFunction = createServiceFunction(stack, "failure", resources, access);

  const rule = createServiceRule(stack, wiring.rules.failure, resources);

  stack.addOutputs({
    DeploymentFailureFunctionName: failureFunction.functionName,
    FailureDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  });
  return { failureFunction, deadLetterQueue, rule };
}
