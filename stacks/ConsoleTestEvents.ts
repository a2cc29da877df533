import { join } from "node:path";
import { CfnSchema } from "aws-cdk-lib/aws-eventschemas";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import { NagSuppressions } from "cdk-nag";
import { type StackContext, use } from "sst/constructs";
import { FailurePath } from "./FailurePath.js";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { Sweep } from "./Sweep.js";
import {
  readTestEvents,
  TEST_EVENT_REGISTRY,
  TEST_EVENT_SCHEMA_TYPE,
  type TestEvent,
  testEventSchemaContent,
  testEventSchemaName,
} from "./test-events.js";
import { serviceFunctionName } from "./wiring.js";

/** Directory of the sample events, relative to the project root (where sst runs). */
export const EVENTS_DIRECTORY = "events";

/**
 * Registers each function's sample events (`events/<function>.<name>.json`) as Lambda shareable
 * test events, so the console's Test tab offers them to every operator of the account.
 */
export function ConsoleTestEvents({ app, stack }: StackContext) {
  const { config } = use(Foundation);
  const launchFunction = config.paths.launch ? use(LaunchPath).launchFunction : undefined;
  const failureFunction = config.paths.failure ? use(FailurePath).failureFunction : undefined;
  const sweepFunction = config.paths.launch ? use(Sweep).sweepFunction : undefined;
  if (!config.testEvents.enabled) return { schemas: [] };

  let registry: AwsCustomResource | undefined;
  if (config.testEvents.ensureRegistry) {
    // The registry is shared by every function of the account and Region and usually already
    // exists (the console creates it on first use): create it only when missing, never delete it.
    registry = new AwsCustomResource(stack, "TestEventRegistry", {
      onCreate: {
        service: "Schemas",
        action: "CreateRegistry",
        parameters: {
          RegistryName: TEST_EVENT_REGISTRY,
          Description: "Lambda shareable test events",
        },
        physicalResourceId: PhysicalResourceId.of(TEST_EVENT_REGISTRY),
        ignoreErrorCodesMatching: "ConflictException",
      },
      policy: AwsCustomResourcePolicy.fromStatements([
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ["schemas:CreateRegistry"],
          resources: [
            `arn:${stack.partition}:schemas:${stack.region}:${stack.account}:registry/${TEST_EVENT_REGISTRY}`,
          ],
        }),
      ]),
      installLatestAwsSdk: false,
    });
    const provider = stack.node.tryFindChild(
      `AWS${AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, "")}`,
    );
    if (provider) {
      NagSuppressions.addResourceSuppressions(
        provider,
        [
          {
            id: "AwsSolutions-IAM4",
            reason:
              "CDK's AwsCustomResource provider writes its own logs with AWSLambdaBasicExecutionRole; it runs only while the stack deploys.",
            appliesTo: [
              "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            ],
          },
          {
            id: "AwsSolutions-L1",
            reason:
              "CDK chooses the runtime of its AwsCustomResource provider; it runs only while the stack deploys.",
          },
        ],
        true,
      );
    }
  }

  const functions: [string, IFunction | undefined, "launch" | "deployment-failure" | "sweep"][] = [
    ["Launch", launchFunction, "launch"],
    ["DeploymentFailure", failureFunction, "deployment-failure"],
    ["Sweep", sweepFunction, "sweep"],
  ];
  const schemas: CfnSchema[] = [];
  for (const [id, fn, role] of functions) {
    // Only the functions the stage deploys.
    if (!fn) continue;
    // A sample launch event names the stage's own hook, or the function would skip it.
    const events = readTestEvents(join(process.cwd(), EVENTS_DIRECTORY), role).map((event) =>
      withHookName(event, config.hook.name),
    );
    if (events.length === 0) continue;
    const schema = new CfnSchema(stack, `${id}TestEvents`, {
      registryName: TEST_EVENT_REGISTRY,
      // The function's fixed name rather than a reference: the schema needs no cross-stack export.
      schemaName: testEventSchemaName(serviceFunctionName(app.stage, role)),
      type: TEST_EVENT_SCHEMA_TYPE,
      description: `Sample events of ${serviceFunctionName(app.stage, role)}`,
      content: testEventSchemaContent(events),
    });
    schema.node.addDependency(fn);
    if (registry) schema.node.addDependency(registry);
    schemas.push(schema);
  }
  return { schemas };
}

function withHookName(event: TestEvent, hookName: string): TestEvent {
  const value = event.value as { detail?: { LifecycleHookName?: unknown } } | null;
  if (!value?.detail || typeof value.detail.LifecycleHookName !== "string") return event;
  return { ...event, value: { ...value, detail: { ...value.detail, LifecycleHookName: hookName } } };
}
