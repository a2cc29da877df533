import { CustomResource, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Function as LambdaFunction, Tracing } from "aws-cdk-lib/aws-lambda";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { StageConfig } from "./config.js";
import { LAMBDA_RUNTIME, RUNTIME } from "./service-function.js";
import type { FunctionCode } from "./service-resources.js";
import { serviceFunctionName } from "./wiring.js";

/** The custom resource type of the check, as it shows in CloudFormation's events. */
export const PREFLIGHT_RESOURCE_TYPE = "Custom::AgentPackagePreflight";

/**
 * Checks before anything acts: Distributor must publish agent.package in the Region, and the
 * pinned agent.version of it (functions/preflight.ts, ssm:DescribeDocument). A custom resource of
 * the Foundation stack, which every other stack waits for: when the check fails, the deploy stops
 * there with the setting named, before a hook, rule or association exists. Its properties change
 * with the package and the pin, so a changed pin is checked again.
 */
export function agentPackagePreflight(
  scope: Construct,
  config: StageConfig,
  code: FunctionCode,
): CustomResource {
  const stack = Stack.of(scope);
  const name = serviceFunctionName(config.stage, "preflight");
  const logGroup = new LogGroup(scope, "PreflightFunctionLogs", {
    logGroupName: `/aws/lambda/${name}`,
    retention: config.logRetentionDays as RetentionDays,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new Role(scope, "PreflightFunctionRole", {
    assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
    description: `Checks that Distributor publishes the agent package and pin (${config.stage})`,
    inlinePolicies: {
      Preflight: new PolicyDocument({
        statements: [
          new PolicyStatement({
            sid: "WriteOwnLogGroup",
            effect: Effect.ALLOW,
            actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
            resources: [logGroup.logGroupArn],
          }),
          new PolicyStatement({
            sid: "DescribeAgentPackage",
            effect: Effect.ALLOW,
            actions: ["ssm:DescribeDocument"],
            // AWS-owned documents have no account in their ARN.
            resources: [`arn:${stack.partition}:ssm:${stack.region}::document/${config.agent.package}`],
          }),
        ],
      }),
    },
  });
  const fn = new LambdaFunction(scope, "PreflightFunction", {
    functionName: name,
    handler: "index.handler",
    description: "Checks that Distributor publishes the stage's agent package and pinned version",
    runtime: LAMBDA_RUNTIME,
    architecture: Architecture.ARM_64,
    memorySize: 128,
    timeout: Duration.seconds(30),
    // Runs a few times per deploy: nothing to trace.
    tracing: Tracing.DISABLED,
    code: code("preflight"),
    logGroup,
    role,
  });
  NagSuppressions.addResourceSuppressions(fn, [
    {
      id: "AwsSolutions-L1",
      reason: `Pinned to ${RUNTIME}, the runtime the handlers are built and tested for; it runs only while the stack deploys.`,
    },
  ]);
  return new CustomResource(scope, "AgentPackagePreflight", {
    serviceToken: fn.functionArn,
    resourceType: PREFLIGHT_RESOURCE_TYPE,
    properties: { PackageName: config.agent.package, Version: config.agent.version },
  });
}
