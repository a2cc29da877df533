import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Function as LambdaFunction, Tracing } from "aws-cdk-lib/aws-lambda";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { StageConfig } from "./config.js";
import { LAMBDA_RUNTIME, RUNTIME } from "./service-function.js";
import type { FunctionCode } from "./service-resources.js";
import { serviceFunctionName } from "./wiring.js";

export interface DeployTimeFunctionProps {
  config: StageConfig;
  code: FunctionCode;
  /** The handler (functions/<name>.ts) and the construct ids' prefix (`<prefix>Function`, ...Role, ...Logs). */
  name: "preflight" | "drain-hook";
  prefix: string;
  /** The inline policy's name and what it allows besides writing its own log group. */
  policyName: string;
  statements: PolicyStatement[];
  roleDescription: string;
  description: string;
  timeoutSeconds: number;
}

/**
 * A function that runs only while a stack deploys, behind a custom resource (the preflight check,
 * the hook drains): its own log group, a role that may write it and do what it names, no tracing.
 */
export function deployTimeFunction(scope: Construct, props: DeployTimeFunctionProps): LambdaFunction {
  const { config, prefix } = props;
  const name = serviceFunctionName(config.stage, props.name);
  const logGroup = new LogGroup(scope, `${prefix}FunctionLogs`, {
    logGroupName: `/aws/lambda/${name}`,
    retention: config.logRetentionDays as RetentionDays,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new Role(scope, `${prefix}FunctionRole`, {
    assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
    description: `${props.roleDescription} (${config.stage})`,
    inlinePolicies: {
      [props.policyName]: new PolicyDocument({
        statements: [
          new PolicyStatement({
            sid: "WriteOwnLogGroup",
            effect: Effect.ALLOW,
            actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
            resources: [logGroup.logGroupArn],
          }),
          ...props.statements,
        ],
      }),
    },
  });
  const fn = new LambdaFunction(scope, `${prefix}Function`, {
    functionName: name,
    handler: "index.handler",
    description: props.description,
    runtime: LAMBDA_RUNTIME,
    architecture: Architecture.ARM_64,
    memorySize: 128,
    timeout: Duration.seconds(props.timeoutSeconds),
    // Runs a few times per deploy: nothing to trace.
    tracing: Tracing.DISABLED,
    code: props.code(props.name),
    logGroup,
    role,
  });
  NagSuppressions.addResourceSuppressions(fn, [
    {
      id: "AwsSolutions-L1",
      reason: `Pinned to ${RUNTIME}, the runtime the handlers are built and tested for; it runs only while the stack deploys.`,
    },
  ]);
  return fn;
}
