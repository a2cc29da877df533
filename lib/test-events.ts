import { Stack } from "aws-cdk-lib";
import { CfnSchema } from "aws-cdk-lib/aws-eventschemas";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import type { StageConfig } from "../stacks/config.js";
import {
  readTestEvents,
  TEST_EVENT_REGISTRY,
  TEST_EVENT_SCHEMA_TYPE,
  type TestEvent,
  testEventSchemaContent,
  testEventSchemaName,
} from "../stacks/test-events.js";
import { serviceFunctionName } from "../stacks/wiring.js";

export interface TestEventsProps {
  config: StageConfig;
  /** The folder of the sample events (`events/` of the project or of the installed package). */
  eventsDirectory: string;
  launchFunction?: IFunction;
  failureFunction?: IFunction;
  sweepFunction?: IFunction;
}

/**
 * Registers each function's sample events (`events/<function>.<name>.json`) as Lambda shareable
 * test events, so the console's Test tab offers them to every operator of the account.
 */
export class AgentFixTestEvents extends Construct {
  readonly schemas: CfnSchema[] = [];

  constructor(scope: Construct, id: string, props: TestEventsProps) {
    super(scope, id);
    const { config, launchFunction, failureFunction, sweepFunction } = props;
    const { partition, region, account } = Stack.of(this);
    if (!config.testEvents.enabled) return;

    let registry: AwsCustomResource | undefined;
    if (config.testEvents.ensureRegistry) {
      // The registry is shared by every function of the account and Region and usually already
      // exists (the console creates it on first use): create it only when missing, never delete it.
      registry = new AwsCustomResource(this, "TestEventRegistry", {
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
            resources: [`arn:${partition}:schemas:${region}:${account}:registry/${TEST_EVENT_REGISTRY}`],
          }),
        ]),
        installLatestAwsSdk: false,
      });
      const provider = Stack.of(this).node.tryFindChild(
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
    const schemas = this.schemas;
    for (const [id, fn, role] of functions) {
      // Only the functions the stage deploys.
      if (!fn) continue;
      // A sample launch event names the stage's own hook, or the function would skip it.
      const events = readTestEvents(props.eventsDirectory, role).map((event) =>
        withHookName(event, config.hook.name),
      );
      if (events.length === 0) continue;
      const schema = new CfnSchema(this, `${id}TestEvents`, {
        registryName: TEST_EVENT_REGISTRY,
        // The function's fixed name rather than a reference: the schema needs no cross-stack export.
        schemaName: testEventSchemaName(serviceFunctionName(config.stage, role)),
        type: TEST_EVENT_SCHEMA_TYPE,
        description: `Sample events of ${serviceFunctionName(config.stage, role)}`,
        content: testEventSchemaContent(events),
      });
      schema.node.addDependency(fn);
      if (registry) schema.node.addDependency(registry);
      schemas.push(schema);
    }
  }
}

function withHookName(event: TestEvent, hookName: string): TestEvent {
  const value = event.value as { detail?: { LifecycleHookName?: unknown } } | null;
  if (!value?.detail || typeof value.detail.LifecycleHookName !== "string") return event;
  return { ...event, value: { ...value, detail: { ...value.detail, LifecycleHookName: hookName } } };
}
