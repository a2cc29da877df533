import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Function as LambdaFunction, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations";
import { LogGroup, type RetentionDays } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../functions/core/contract.js";
import { type FunctionAccess, WILDCARD_EVIDENCE } from "./permissions.js";
import { queueOf, resourceNames, type StackResources } from "./service-resources.js";
import { type FunctionKey, wired } from "./wiring.js";

export const RUNTIME = "nodejs22.x";
/** The Lambda runtime of every function: the one the bundles target (node22). */
export const LAMBDA_RUNTIME = Runtime.NODEJS_22_X;

/**
 * A function of the service with the settings every one of them shares: Node.js 22 on arm64,
 * explicit memory and timeout, active X-Ray tracing, Powertools configuration, its own log group
 * with the stage's retention, and a role of its own that holds only the statements given (plus
 * writing to its log group and, added by the tracing setting, sending trace segments). Its name,
 * handler, size, environment, concurrency and asynchronous-invoke policy come from its wiring.
 */
export function createServiceFunction(
  scope: Construct,
  key: FunctionKey,
  resources: StackResources,
  access: FunctionAccess,
): LambdaFunction {
  const props = { ...access, config: resources.config, resources };
  const wiring = wired(resources.wiring.functions[key], `${key} function`, resources.config.stage);
  const { id } = wiring;
  const logGroup = new LogGroup(scope, `${id}Logs`, {
    logGroupName: `/aws/lambda/${wiring.name}`,
    retention: props.config.logRetentionDays as RetentionDays,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  const role = new Role(scope, `${id}Role`, {
    assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
    description: `${wiring.description} (${props.config.stage})`,
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
  const fn = new LambdaFunction(scope, id, {
    functionName: wiring.name,
    handler: wiring.handler,
    description: wiring.description,
    runtime: LAMBDA_RUNTIME,
    architecture: Architecture.ARM_64,
    memorySize: wiring.memoryMb,
    timeout: Duration.seconds(wiring.timeoutSeconds),
    ...(wiring.reservedConcurrency !== undefined
      ? { reservedConcurrentExecutions: wiring.reservedConcurrency }
      : {}),
    tracing: props.config.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
    // The pre-built bundle (scripts/bundle-functions.ts: minified, names kept, so stack traces stay
    // readable, and a smaller bundle loads faster on a cold start; `npm run bench` measures both).
    code: resources.code(wiring.role),
    logGroup,
    role,
    environment: {
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: props.config.logLevel,
      POWERTOOLS_TRACE_ENABLED: String(props.config.tracing),
      ...wiring.environment(resourceNames(props.resources)),
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
  if (wiring.asyncInvoke) {
    const { retryAttempts, maxEventAgeSeconds, onFailure } = wiring.asyncInvoke;
    fn.configureAsyncInvoke({
      retryAttempts,
      maxEventAge: Duration.seconds(maxEventAgeSeconds),
      ...(onFailure ? { onFailure: new SqsDestination(queueOf(props.resources, onFailure)) } : {}),
    });
  }
  props.resources.functions[key] = fn;
  return fn;
}
