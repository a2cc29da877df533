import { CfnOutput, type CustomResource } from "aws-cdk-lib";
import type { CfnLifecycleHook } from "aws-cdk-lib/aws-autoscaling";
import type { Rule } from "aws-cdk-lib/aws-events";
import type { Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { CfnAssociation } from "aws-cdk-lib/aws-ssm";
import { Construct } from "constructs";
import { SERVICE_NAME } from "../functions/core/contract.js";
import { hookDrains } from "../stacks/drain.js";
import { failureAccess, launchAccess, sweepAccess } from "../stacks/permissions.js";
import { createServiceFunction } from "../stacks/service-function.js";
import {
  createLifecycleHooks,
  createServiceQueue,
  createServiceRule,
  sqsEventSource,
} from "../stacks/service-resources.js";
import { wired } from "../stacks/wiring.js";
import type { AgentFixFoundation } from "./foundation.js";

/**
 * Launch path: our lifecycle hook holds each new instance in Pending:Wait, its EventBridge event
 * goes through an SQS queue (batching a morning scale-out, buffering bursts, keeping unfinished work
 * across invocations) to functions/launch.ts, which installs and verifies the agent and completes
 * the lifecycle action. Every setting comes from the stage's wiring (stacks/wiring.ts).
 */
export class AgentFixLaunchPath extends Construct {
  readonly launchFunction: LambdaFunction;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly rule: Rule;
  readonly installEndedRule: Rule;
  readonly hooks: CfnLifecycleHook[];
  /** Before a hook is deleted, the launches waiting on it are completed with CONTINUE (stacks/drain.ts). */
  readonly drains: CustomResource[];

  constructor(
    scope: Construct,
    id: string,
    foundation: AgentFixFoundation,
    groupKeys: ReadonlyMap<string, string> = new Map(),
  ) {
    super(scope, id);
    const { config, wiring, leaseTable } = foundation;
    const resources = foundation.pathResources();

    this.deadLetterQueue = createServiceQueue(this, "launchDeadLetter", resources);
    this.queue = createServiceQueue(this, "launch", resources);

    this.launchFunction = createServiceFunction(
      this,
      "launch",
      resources,
      launchAccess(this, config, leaseTable, this.queue),
    );
    for (const source of wiring.sqsSources.filter((candidate) => candidate.function === "launch")) {
      this.launchFunction.addEventSource(sqsEventSource(source, resources));
    }

    this.rule = createServiceRule(this, wired(wiring.rules.launch, "launch rule", config.stage), resources);
    this.installEndedRule = createServiceRule(
      this,
      wired(wiring.rules.commandEnded, "launch rule", config.stage),
      resources,
    );
    this.hooks = createLifecycleHooks(
      this,
      wiring.lifecycleHooks,
      [this.rule, this.launchFunction],
      groupKeys,
    );
    this.drains = hookDrains(this, config, this.hooks, foundation.code);

    new CfnOutput(this, "LaunchFunctionName", { value: this.launchFunction.functionName });
    new CfnOutput(this, "LaunchQueueUrl", { value: this.queue.queueUrl });
    new CfnOutput(this, "LaunchDeadLetterQueueUrl", { value: this.deadLetterQueue.queueUrl });
  }
}

/**
 * Failure path: a failed CodeDeploy deployment of a group in scope invokes
 * functions/deployment-failure.ts asynchronously. Both hops retry on an explicit policy and keep
 * what they could not process in one dead-letter queue: EventBridge when it cannot invoke the
 * function, Lambda when the function keeps failing. A failure the function cannot act on yet (a busy
 * group, a rollback to come) comes back through the retry queue, which the function reads and alone
 * sends to. Every setting comes from the stage's wiring (stacks/wiring.ts).
 */
export class AgentFixFailurePath extends Construct {
  readonly failureFunction: LambdaFunction;
  readonly deadLetterQueue: Queue;
  readonly retryQueue: Queue;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, foundation: AgentFixFoundation) {
    super(scope, id);
    const { config, wiring, leaseTable } = foundation;
    const resources = foundation.pathResources();

    this.deadLetterQueue = createServiceQueue(this, "failureDeadLetter", resources);
    this.retryQueue = createServiceQueue(this, "failureRetry", resources);

    const access = failureAccess(this, config, leaseTable, this.retryQueue);
    this.failureFunction = createServiceFunction(this, "failure", resources, access);
    for (const source of wiring.sqsSources.filter((candidate) => candidate.function === "failure")) {
      this.failureFunction.addEventSource(sqsEventSource(source, resources));
    }

    this.rule = createServiceRule(this, wired(wiring.rules.failure, "failure rule", config.stage), resources);

    new CfnOutput(this, "DeploymentFailureFunctionName", { value: this.failureFunction.functionName });
    new CfnOutput(this, "FailureDeadLetterQueueUrl", { value: this.deadLetterQueue.queueUrl });
    new CfnOutput(this, "FailureRetryQueueUrl", { value: this.retryQueue.queueUrl });
  }
}

/**
 * Sweep: on a schedule, functions/sweep.ts puts instances stuck in Pending:Wait on our hook back on
 * the launch queue (lifecycle events are best effort and can be lost). Every setting comes from the
 * stage's wiring (stacks/wiring.ts).
 */
export class AgentFixSweep extends Construct {
  readonly sweepFunction: LambdaFunction;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, foundation: AgentFixFoundation, launch: AgentFixLaunchPath) {
    super(scope, id);
    const { config, wiring, leaseTable } = foundation;
    const resources = foundation.pathResources();
    resources.queues.launch = launch.queue;

    this.sweepFunction = createServiceFunction(
      this,
      "sweep",
      resources,
      sweepAccess(launch.queue, leaseTable),
    );
    this.rule = createServiceRule(this, wired(wiring.rules.sweep, "launch sweep", config.stage), resources);

    new CfnOutput(this, "SweepFunctionName", { value: this.sweepFunction.functionName });
  }
}

/**
 * The baseline: a State Manager association that keeps the agent current on the fleet on a
 * schedule, with the stage's own install document, so it too leaves an agent already at the pinned
 * version alone and never restarts one in the middle of a deployment. Created only for the instances
 * the stage names (its groups, or association.target), never in a dry run.
 */
export class AgentFixAssociation extends Construct {
  readonly association?: CfnAssociation;

  constructor(scope: Construct, id: string, foundation: AgentFixFoundation) {
    super(scope, id);
    const { config, documents } = foundation;
    const { association, agent } = config;
    if (!association.enabled || !association.target) return;

    this.association = new CfnAssociation(this, "InstallCodeDeployAgent", {
      associationName: `${SERVICE_NAME}-${config.stage}-install-codedeployagent`,
      name: documents.install.ref,
      parameters: {
        packageName: [agent.package],
        version: [agent.version],
        // A pinned stage accepts only its pin; a stage on the latest accepts whatever the install puts in place.
        expectedVersion: [agent.version],
      },
      // Target keys: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html
      targets: [{ key: association.target.key, values: association.target.values }],
      scheduleExpression: association.schedule,
      applyOnlyAtCronInterval: association.applyOnlyAtCronInterval,
      complianceSeverity: association.complianceSeverity,
      // Percentages of the targets: at most this share reinstalls its agent at once, and the run
      // stops once this share has failed, so a group is never taken offline as a whole.
      maxConcurrency: association.maxConcurrency,
      maxErrors: association.maxErrors,
    });

    new CfnOutput(this, "AssociationName", { value: this.association.associationName ?? "" });
  }
}
