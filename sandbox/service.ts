import { LAUNCH_TRANSITION } from "../functions/core/contract.js";
import { parseStageConfig, type StageConfig, type StageConfigInput } from "../stacks/config.js";
import { failureEnvironment, launchEnvironment, sweepEnvironment } from "../stacks/environment.js";
import { deploymentFailureEventPattern, launchEventPattern } from "../stacks/patterns.js";
import type { EventBus } from "./events/bus.js";
import type { LambdaFunction, LambdaRuntime } from "./runtime/lambda.js";
import { addSqsEventSource, type SqsSourceStats } from "./runtime/sqs-source.js";
import type { Queue } from "./world/sqs.js";
import type { World } from "./world/world.js";

/**
 * The service deployed into the sandbox the way the stacks deploy it to AWS: the same stage
 * configuration (stacks/config.ts, defaults included), the same environment variables, queues,
 * event source settings, rule patterns, async retry policy, schedule and lifecycle hooks.
 */
export interface ServiceDeployment {
  config: StageConfig;
  launch: LambdaFunction;
  failure: LambdaFunction;
  sweep?: LambdaFunction;
  launchQueue: Queue;
  launchDeadLetterQueue: Queue;
  failureDeadLetterQueue: Queue;
  leaseTable: string;
  launchSource: SqsSourceStats;
}

export interface DeployOptions {
  /** Stage name for the configuration rules (pinned stages must pin the agent version). */
  stage?: string;
  /** Run the scheduled sweep (default: as the configuration says). */
  sweep?: boolean;
  /** Reserved concurrency of each function in the sandbox (Lambda's unreserved pool is far larger). */
  concurrency?: { launch?: number; failure?: number; sweep?: number };
  /** Extra environment for all functions (e.g. AWS_MAX_ATTEMPTS). */
  env?: Record<string, string>;
  /**
   * Wire the functions to their triggers (rules, queue, schedule); default true. Off, the functions
   * are only invoked by hand (replays).
   */
  triggers?: boolean;
}

export const LEASE_TABLE = "agentfix-sandbox-leases";

/** Seconds of an EventBridge `rate(...)` expression. */
export function rateSeconds(expression: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!match) throw new RangeError(`the sandbox runs rate(...) schedules only, not ${expression}`);
  const unit = match[2]!.startsWith("minute") ? 60 : match[2]!.startsWith("hour") ? 3600 : 86_400;
  return Number(match[1]) * unit;
}

export async function deployService(
  world: World,
  bus: EventBus,
  runtime: LambdaRuntime,
  input: StageConfigInput,
  options: DeployOptions = {},
): Promise<ServiceDeployment> {
  const config = parseStageConfig(options.stage ?? "sandbox", input, "sandbox configuration");
  const { hook, launch, failure, sweep } = config;
  world.dynamodb.createTable({ name: LEASE_TABLE, hashKey: "pk" });
  const launchDeadLetterQueue = world.sqs.createQueue({ name: "agentfix-launch-dlq" });
  const launchQueue = world.sqs.createQueue({
    name: "agentfix-launch",
    visibilityTimeoutSeconds: launch.visibilityTimeoutSeconds,
    maxReceiveCount: launch.maxReceiveCount,
    deadLetterQueueName: launchDeadLetterQueue.name,
  });
  const failureDeadLetterQueue = world.sqs.createQueue({ name: "agentfix-failure-dlq" });

  const launchFunction = await runtime.deploy({
    name: "agentfix-sandbox-launch",
    module: "functions/launch.ts",
    timeoutSeconds: launch.timeoutSeconds,
    memoryMb: launch.memoryMb,
    reservedConcurrency: options.concurrency?.launch ?? launch.maxConcurrency,
    env: {
      ...options.env,
      ...launchEnvironment(config, {
        leaseTable: LEASE_TABLE,
        launchQueueUrl: world.sqs.queueUrl(launchQueue.name),
      }),
    },
  });
  const triggers = options.triggers ?? true;
  const launchSource = triggers
    ? addSqsEventSource(runtime, world, launchFunction, launchQueue, {
        batchSize: launch.batchSize,
        maximumBatchingWindowSeconds: launch.maxBatchingWindowSeconds,
        reportBatchItemFailures: true,
        maximumConcurrency: launch.maxConcurrency,
      })
    : { batches: 0, messagesReceived: 0, messagesDeleted: 0, itemFailures: 0, failedBatches: 0 };
  if (triggers) {
    bus.addRule("LaunchLifecycleRule", launchEventPattern(config.groups, hook.name), (event) => {
      world.sqs.sendMessage(launchQueue, JSON.stringify(event));
    });
  }

  const failureFunction = await runtime.deploy({
    name: "agentfix-sandbox-deployment-failure",
    module: "functions/deployment-failure.ts",
    timeoutSeconds: failure.timeoutSeconds,
    memoryMb: failure.memoryMb,
    reservedConcurrency: options.concurrency?.failure ?? 10,
    env: { ...options.env, ...failureEnvironment(config, { leaseTable: LEASE_TABLE }) },
  });
  if (triggers) {
    bus.addRule("DeploymentFailureRule", deploymentFailureEventPattern(config.deploymentGroups), (event) => {
      runtime.invokeAsync(failureFunction, event, { maximumRetryAttempts: failure.retryAttempts });
    });
  }
  runtime.onStop(() => {
    for (const record of failureFunction.failureDestination.splice(0)) {
      world.sqs.sendMessage(failureDeadLetterQueue, JSON.stringify(record));
    }
  });

  let sweepFunction: LambdaFunction | undefined;
  if (triggers && (options.sweep ?? sweep.enabled)) {
    sweepFunction = await runtime.deploy({
      name: "agentfix-sandbox-sweep",
      module: "functions/sweep.ts",
      timeoutSeconds: sweep.timeoutSeconds,
      memoryMb: sweep.memoryMb,
      reservedConcurrency: options.concurrency?.sweep ?? 1,
      env: {
        ...options.env,
        ...sweepEnvironment(config, { launchQueueUrl: world.sqs.queueUrl(launchQueue.name) }),
      },
    });
    runtime.schedule(sweepFunction, rateSeconds(sweep.schedule), "SweepSchedule");
  }

  if (hook.managedBy === "stack") {
    for (const group of config.groups) {
      world.autoScaling.putLifecycleHook({
        groupName: group,
        hookName: hook.name,
        transition: LAUNCH_TRANSITION,
        heartbeatTimeout: hook.heartbeatTimeoutSeconds,
        defaultResult: hook.defaultResult,
      });
    }
  }

  return {
    config,
    launch: launchFunction,
    failure: failureFunction,
    sweep: sweepFunction,
    launchQueue,
    launchDeadLetterQueue,
    failureDeadLetterQueue,
    leaseTable: LEASE_TABLE,
    launchSource,
  };
}
