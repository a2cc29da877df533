import { RemovalPolicy } from "aws-cdk-lib";
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import { Function as SstFunction } from "sst/constructs";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../functions/core/contract.js";
import type { StageConfig } from "./config.js";
import { WILDCARD_EVIDENCE, type WildcardEvidence } from "./permissions.js";

export const RUNTIME = "nodejs22.x";

/**
 * Functions have predictable names, `agentfix-<stage>-<role>`, so operators and tools
 * (`npm run replay`, the console's test events, CloudWatch Logs under /aws/lambda/<name>) find them.
 */
export function serviceFunctionName(stage: string, role: "launch" | "deployment-failure" | "sweep"): string {
  return `${SERVICE_NAME}-${stage}-${role}`;
}

export interface ServiceFunctionProps {
  functionName: string;
  handler: string;
  description: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment: Record<string, string>;
  statements: PolicyStatement[];
  /** Wildcard resources the statements hold, each with its written reason (stacks/permissions.ts). */
  wildcards: WildcardEvidence[];
  config: StageConfig;
}

/**
 * A function of the service with the settings every one of them shares: Node.js 22 on arm64,
 * explicit memory and timeout, active X-Ray tracing, Powertools configuration, its own log group
 * with the stage's retention, and a role of its own that holds only the statements given (plus
 * writing to its log group and, added by the tracing setting, sending trace segments).
 */
export function createServiceFunction(
  scope: Construct,
  id: string,
  props: ServiceFunctionProps,
): SstFunction {
  const logGroup = new LogGroup(scope, `${id}Logs`, {
    logGroupName: `/aws/lambda/${props.functionName}`,
    retention: props.config.logRetentionDays as RetentionDays,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new Role(scope, `${id}Role`, {
    assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
    description: `${props.description} (${props.config.stage})`,
    inlinePolicies: {
      Logs: new PolicyDocument({
        statements: [
          new PolicyStatement({
            sid: "WriteOwnLogGroup",
            effect: Effect.ALLOW,
            actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
            resources: [logGroup.logGroupArn],
          }),
        ],
      }),
    },
  });
  const fn = new SstFunction(scope, id, {
    functionName: props.functionName,
    handler: props.handler,
    description: props.description,
    runtime: RUNTIME,
    architecture: "arm_64",
    memorySize: props.memoryMb,
    timeout: props.timeoutSeconds,
    tracing: "active",
    // Minified (SST keeps function and class names, so stack traces stay readable): a smaller
    // bundle loads faster on a cold start (`npm run bench` measures both). Separate sourcemaps
    // would only feed SST's console, which this service does not use.
    nodejs: { minify: true, sourcemap: false },
    logGroup,
    role,
    environment: {
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: props.config.logLevel,
      ...props.environment,
    },
  });
  for (const statement of props.statements) role.addToPrincipalPolicy(statement);
  NagSuppressions.addResourceSuppressions(
    role,
    props.wildcards.map((kind) => ({
      id: "AwsSolutions-IAM5",
      reason: WILDCARD_EVIDENCE[kind].reason,
      appliesTo: [WILDCARD_EVIDENCE[kind].appliesTo],
    })),
    true,
  );
  NagSuppressions.addResourceSuppressions(fn, [
    {
      id: "AwsSolutions-L1",
      reason: `Pinned to ${RUNTIME}, the runtime the handlers are built and tested for (supported by Lambda until 2027-04-30); moving to a newer runtime is a deliberate upgrade.`,
    },
  ]);
  return fn;
}
