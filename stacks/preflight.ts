import { CustomResource, Stack } from "aws-cdk-lib";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { Construct } from "constructs";
import type { StageConfig } from "./config.js";
import { deployTimeFunction } from "./deploy-time-function.js";
import type { FunctionCode } from "./service-resources.js";

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
  const fn = deployTimeFunction(scope, {
    config,
    code,
    name: "preflight",
    prefix: "Preflight",
    policyName: "Preflight",
    roleDescription: "Checks that Distributor publishes the agent package and pin",
    description: "Checks that Distributor publishes the stage's agent package and pinned version",
    timeoutSeconds: 30,
    statements: [
      new PolicyStatement({
        sid: "DescribeAgentPackage",
        effect: Effect.ALLOW,
        actions: ["ssm:DescribeDocument"],
        // AWS-owned documents have no account in their ARN.
        resources: [`arn:${stack.partition}:ssm:${stack.region}::document/${config.agent.package}`],
      }),
    ],
  });
  return new CustomResource(scope, "AgentPackagePreflight", {
    serviceToken: fn.functionArn,
    resourceType: PREFLIGHT_RESOURCE_TYPE,
    properties: { PackageName: config.agent.package, Version: config.agent.version },
  });
}
