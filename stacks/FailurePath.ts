import { Duration } from "aws-cdk-lib";
import { Rule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import { type StackContext, use } from "sst/constructs";
import { failureEnvironment } from "./environment.js";
import { Foundation } from "./Foundation.js";
import { deploymentFailureEventPattern } from "./patterns.js";
import {
  codeDeployStatements,
  leaseStatement,
  sendCommandStatements,
  ssmReadStatement,
} from "./permissions.js";
import { createServiceFunction, serviceFunctionName } from "./service-function.js";

/**
 * Failure path: a failed CodeDeploy deployment of a group in scope invokes
 * functions/deployment-failure.ts asynchronously. Both hops retry on an explicit policy and keep
 * what they could not process in one dead-letter queue: EventBridge when it cannot invoke the
 * function (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html),
 * Lambda when the function keeps failing
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
 */
export function FailurePath({ app, stack }: StackContext) {
  const { config, leaseTable } = use(Foundation);
  const { failure } = config;

  const deadLetterQueue = new Queue(stack, "FailureDeadLetterQueue", {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  NagSuppressions.addResourceSuppressions(deadLetterQueue, [
    {
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter queue and failure destination of the failure path.",
    },
  ]);

  const failureFunction = createServiceFunction(stack, "DeploymentFailureFunction", {
    functionName: serviceFunctionName(app.stage, "deployment-failure"),
    handler: "functions/deployment-failure.handler",
    description: "Upgrades the CodeDeploy agent and redeploys when an outdated agent broke a deployment",
    timeoutSeconds: failure.timeoutSeconds,
    memoryMb: failure.memoryMb,
    config,
    environment: failureEnvironment(config, { leaseTable: leaseTable.tableName }),
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
  failureFunction.configureAsyncInvoke({
    retryAttempts: failure.retryAttempts,
    maxEventAge: Duration.seconds(failure.maxEventAgeSeconds),
    onFailure: new SqsDestination(deadLetterQueue),
  });

  const rule = new Rule(stack, "DeploymentFailureRule", {
    description: "Failed CodeDeploy deployments of the deployment groups in scope",
    eventPattern: deploymentFailureEventPattern(config.deploymentGroups),
  });
  rule.addTarget(
    new LambdaFunction(failureFunction, {
      deadLetterQueue,
      retryAttempts: 8,
      maxEventAge: Duration.seconds(failure.maxEventAgeSeconds),
    }),
  );

  stack.addOutputs({
    DeploymentFailureFunctionName: failureFunction.functionName,
    FailureDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  });
  return { failureFunction, deadLetterQueue, rule };
}
