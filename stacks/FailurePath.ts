import { NagSuppressions } from "cdk-nag";
import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";
import {
  codeDeployStatements,
  leaseStatement,
  sendCommandStatements,
  ssmReadStatement,
} from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import { createServiceQueue, createServiceRule, type StackResources } from "./service-resources.js";

/**
 * Failure path: a failed CodeDeploy deployment of a group in scope invokes
 * functions/deployment-failure.ts asynchronously. Both hops retry on an explicit policy and keep
 * what they could not process in one dead-letter queue: EventBridge when it cannot invoke the
 * function, Lambda when the function keeps failing. Every setting comes from the stage's wiring
 * (stacks/wiring.ts).
 */
export function FailurePath({ stack }: StackContext) {
  const { config, wiring, leaseTable } = use(Foundation);
  const resources: StackResources = { leaseTable, queues: {}, functions: {} };

  const deadLetterQueue = createServiceQueue(stack, wiring.queues.failureDeadLetter, resources);
  NagSuppressions.addResourceSuppressions(deadLetterQueue, [
    {
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter queue and failure destination of the failure path.",
    },
  ]);
  resources.queues.failureDeadLetter = deadLetterQueue;

  const failureFunction = createServiceFunction(stack, wiring.functions.failure, {
    config,
    resources,
    statements: [
      // The failed targets of a deployment group in scope are instances of the groups in scope
      // (every instance of the account and Region when no group is listed).
      ...sendCommandStatements(stack, config),
      ssmReadStatement(),
      ...codeDeployStatements(stack, config.deploymentGroups),
      leaseStatement(leaseTable.tableArn),
    ],
    wildcards: ["readOnly", "instances", "allDeploymentGroups", "deploymentConfigs"],
  });
  resources.functions.failure = failureFunction;

  const rule = createServiceRule(stack, wiring.rules.failure, resources);

  stack.addOutputs({
    DeploymentFailureFunctionName: failureFunction.functionName,
    FailureDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  });
  return { failureFunction, deadLetterQueue, rule };
}
