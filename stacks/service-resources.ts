import { Duration } from "aws-cdk-lib";
import { CfnLifecycleHook } from "aws-cdk-lib/aws-autoscaling";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction, SqsQueue } from "aws-cdk-lib/aws-events-targets";
import type { Code, IFunction } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { type IQueue, Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { NagSuppressions } from "cdk-nag";
import type { Construct, IDependable } from "constructs";
import type { StageConfig } from "./config.js";
import {
  type FunctionKey,
  type FunctionRole,
  hookConstructId,
  isScheduleRule,
  type LifecycleHookWiring,
  type QueueKey,
  type QueueWiring,
  type ResourceNames,
  type RuleWiring,
  type ServiceWiring,
  type SqsSourceWiring,
  wired,
} from "./wiring.js";

// The CDK constructs of the service's wiring (stacks/wiring.ts): each stack builds its queues,
// event sources, rules and hooks through these, so every setting comes from the description.

/**
 * The resources of the service a stack has at hand, its own and those it uses from other stacks,
 * by their keys in the wiring; a stack adds each resource as it creates it.
 */
/** What one stack of a path builds from: the stage, its wiring, and the resources made so far. */
export interface StackResources {
  config: StageConfig;
  wiring: ServiceWiring;
  leaseTable?: ITable;
  queues: Partial<Record<QueueKey, IQueue>>;
  functions: Partial<Record<FunctionKey, IFunction>>;
  /** Where each function's code comes from (its pre-built bundle, a bucket, a placeholder). */
  code: FunctionCode;
}

/** The code of one function of the service, by its handler module's name (`functions/<name>.ts`). */
export type FunctionCode = (name: FunctionRole | "preflight" | "drain-hook") => Code;

export function queueOf(resources: StackResources, key: QueueKey): IQueue {
  const queue = resources.queues[key];
  if (!queue) throw new Error(`the wiring names the ${key} queue, which this stack does not have`);
  return queue;
}

export function functionOf(resources: StackResources, key: FunctionKey): IFunction {
  const fn = resources.functions[key];
  if (!fn) throw new Error(`the wiring names the ${key} function, which this stack does not have`);
  return fn;
}

/** CloudFormation references to the resources, for the functions' environment. */
export function resourceNames(resources: StackResources): ResourceNames {
  return {
    get leaseTable() {
      if (!resources.leaseTable)
        throw new Error("the wiring names the lease table, which this stack does not have");
      return resources.leaseTable.tableName;
    },
    queueUrl: (key) => queueOf(resources, key).queueUrl,
  };
}

/** A queue of the service: encrypted with the SQS-managed key and reachable over TLS only. */
/** Creates one queue of the wiring and records it under its key, so rules, sources and queues find it. */
export function createServiceQueue(scope: Construct, key: QueueKey, resources: StackResources): Queue {
  const { wiring } = resources;
  const description = wired(wiring.queues[key], `${key} queue`, resources.config.stage);
  const queue = newQueue(scope, description, resources);
  resources.queues[key] = queue;
  const { deadLetterOf } = description;
  if (deadLetterOf) {
    NagSuppressions.addResourceSuppressions(queue, [
      { id: "AwsSolutions-SQS3", reason: `This queue is itself the dead-letter queue of ${deadLetterOf}.` },
    ]);
  }
  return queue;
}

function newQueue(scope: Construct, wiring: QueueWiring, resources: StackResources): Queue {
  return new Queue(scope, wiring.id, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    ...(wiring.retentionSeconds !== undefined
      ? { retentionPeriod: Duration.seconds(wiring.retentionSeconds) }
      : {}),
    ...(wiring.visibilityTimeoutSeconds !== undefined
      ? { visibilityTimeout: Duration.seconds(wiring.visibilityTimeoutSeconds) }
      : {}),
    ...(wiring.deadLetter
      ? {
          deadLetterQueue: {
            queue: queueOf(resources, wiring.deadLetter.queue),
            maxReceiveCount: wiring.deadLetter.maxReceiveCount,
          },
        }
      : {}),
  });
}

export function sqsEventSource(wiring: SqsSourceWiring, resources: StackResources): SqsEventSource {
  return new SqsEventSource(queueOf(resources, wiring.queue), {
    batchSize: wiring.batchSize,
    maxBatchingWindow: Duration.seconds(wiring.maxBatchingWindowSeconds),
    reportBatchItemFailures: wiring.reportBatchItemFailures,
    maxConcurrency: wiring.maxConcurrency,
  });
}

/** An EventBridge rule (event pattern or schedule) and its one target, with its retry policy. */
export function createServiceRule(scope: Construct, wiring: RuleWiring, resources: StackResources): Rule {
  const rule = new Rule(scope, wiring.id, {
    description: wiring.description,
    ...(isScheduleRule(wiring)
      ? { schedule: Schedule.expression(wiring.schedule) }
      : { eventPattern: wiring.pattern }),
    enabled: wiring.enabled,
  });
  const { target } = wiring;
  const policy = {
    ...(target.deadLetterQueue ? { deadLetterQueue: queueOf(resources, target.deadLetterQueue) } : {}),
    retryAttempts: target.retryAttempts,
    maxEventAge: Duration.seconds(target.maxEventAgeSeconds),
  };
  rule.addTarget(
    "queue" in target
      ? new SqsQueue(queueOf(resources, target.queue), policy)
      : new LambdaFunction(functionOf(resources, target.function), policy),
  );
  return rule;
}

/**
 * The hooks on their groups, each created after `dependencies` (the rule and the queue consumer),
 * so no launch that follows a hook's creation goes unseen. A group whose name is only known at deploy
 * time (a token) is keyed by `groupKeys`.
 */
export function createLifecycleHooks(
  scope: Construct,
  hooks: readonly LifecycleHookWiring[],
  dependencies: IDependable[],
  groupKeys: ReadonlyMap<string, string> = new Map(),
): CfnLifecycleHook[] {
  return hooks.flatMap((hook) =>
    hook.groups.map((group) => {
      // Keyed by the group's name: removing one group from `groups` replaces no other group's hook.
      const lifecycleHook = new CfnLifecycleHook(
        scope,
        hookConstructId(hook, groupKeys.get(group) ?? group),
        {
          autoScalingGroupName: group,
          lifecycleHookName: hook.name,
          lifecycleTransition: hook.transition,
          heartbeatTimeout: hook.heartbeatTimeoutSeconds,
          defaultResult: hook.defaultResult,
        },
      );
      lifecycleHook.node.addDependency(...dependencies);
      return lifecycleHook;
    }),
  );
}
