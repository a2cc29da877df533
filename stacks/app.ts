import type { Stack } from "aws-cdk-lib";
import { NagSuppressions } from "cdk-nag";
import { type App, getStack } from "sst/constructs";
import { AgentAssociation } from "./AgentAssociation.js";
import { ConsoleTestEvents } from "./ConsoleTestEvents.js";
import { type StageConfig, useStageConfig } from "./config.js";
import { FailurePath } from "./FailurePath.js";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { Monitoring } from "./Monitoring.js";
import { Sweep } from "./Sweep.js";

/** Every stack of the service, in dependency order. */
export const STACKS = [
  Foundation,
  LaunchPath,
  FailurePath,
  Sweep,
  AgentAssociation,
  Monitoring,
  ConsoleTestEvents,
] as const;

/**
 * The stacks a stage deploys: a path only when the stage names what it acts on (LaunchPath and
 * Sweep for `groups`, FailurePath for `deploymentGroups`), monitoring and test events only for the
 * functions it has.
 */
export function stacksOf(config: StageConfig): (typeof STACKS)[number][] {
  const { launch, failure } = config.paths;
  return STACKS.filter((stack) => {
    if (stack === LaunchPath || stack === Sweep) return launch;
    if (stack === FailurePath) return failure;
    if (stack === Monitoring || stack === ConsoleTestEvents) return launch || failure;
    return true;
  });
}

export function addStacks(app: App): void {
  for (const stack of stacksOf(useStageConfig(app.stage))) {
    app.stack(stack);
    suppressFrameworkFindings(getStack(stack));
  }
}

/**
 * SST puts a custom-resource handler in every stack (sst/constructs Stack.createCustomResourceHandler);
 * it is the framework's, not the service's, and only runs while a stack deploys.
 */
function suppressFrameworkFindings(stack: Stack): void {
  const handler = stack.node.tryFindChild("CustomResourceHandler");
  if (!handler) return;
  NagSuppressions.addResourceSuppressions(
    handler,
    [
      {
        id: "AwsSolutions-IAM4",
        reason:
          "SST's per-stack custom-resource handler writes its logs with AWSLambdaBasicExecutionRole; it runs only at deploy time.",
        appliesTo: ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
      },
      {
        id: "AwsSolutions-L1",
        reason:
          "SST chooses the runtime of its per-stack custom-resource handler; it runs only at deploy time.",
      },
    ],
    true,
  );
}
