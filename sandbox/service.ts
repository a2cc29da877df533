import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { SERVICE_NAME } from "../functions/core/contract.js";
import { type DrainReport, drainLifecycleHook, sdkDrainApi } from "../functions/drain-hook.js";
import { agentPackageProblem } from "../functions/preflight.js";
import { parseStageConfig, type StageConfig, type StageConfigInput } from "../stacks/config.js";
import {
  describeService,
  type FunctionKey,
  type FunctionWiring,
  isScheduleRule,
  type QueueKey,
  type RuleWiring,
  type ServiceWiring,
} from "../stacks/wiring.js";
import type { EventBus } from "./events/bus.js";
import { type DynamoDbTarget, worldDynamoDb } from "./runtime/dynamodb-target.js";
import type { LambdaFunction, LambdaRuntime } from "./runtime/lambda.js";
import { addSqsEventSource, type SqsSourceStats } from "./runtime/sqs-source.js";
import type { Queue } from "./world/sqs.js";
import type { World } from "./world/world.js";

// The service deployed into the sandbox from the very description the stacks build from
// (stacks/wiring.ts, derived from the stage configuration, defaults included): the same functions
// with their environment, queues and redrive policies, event source settings, rule patterns and
// schedule, asynchronous-invoke policies and lifecycle hooks. A setting changed in the stage
// configuration or the description changes the stacks and the sandbox alike.
//
// What the sandbox leaves out: queue retention (a run is far shorter than any retention period),
// and EventBridge's retry policy and dead-letter queue for a failed delivery (the sandbox's bus
// delivers to a queue or function without failing; its faults drop events before the target).
//
// Several stages can be deployed into one sandbox, as into one account: each has its own functions
// (`agentfix-<stage>-<role>`), documents and hook. The wiring's queue names carry no stage (in the
// stacks CloudFormation names the queues) and each stage's stacks have a lease table of their own,
// so a stage deployed after another gets its queues, lease table and rule names prefixed with its
// stage here, as its own stacks would give it resources of its own.

/**
 * A stage deploys only the paths it names (stacks/wiring.ts): the launch function and its queues
 * when it names `groups`, the failure function and its queues when it names `deploymentGroups`.
 * Reading a part of a path the stage did not deploy throws, naming the missing setting
 * (`has` says what is there).
 */
export interface ServiceDeployment {
  config: StageConfig;
  /** The description the deployment followed. */
  wiring: ServiceWiring;
  /** The paths deployed: `launch` with `groups`, `failure` with `deploymentGroups`. */
  has: { launch: boolean; failure: boolean };
  launch: LambdaFunction;
  failure: LambdaFunction;
  sweep?: LambdaFunction;
  launchQueue: Queue;
  launchDeadLetterQueue: Queue;
  failureDeadLetterQueue: Queue;
  /** Failures deferred until their group is free (or their rollback had time to appear). */
  failureRetryQueue: Queue;
  /** The lease table's name as the functions were given it (run-prefixed on an external DynamoDB). */
  leaseTable: string;
  launchSource: SqsSourceStats;
}

export interface DeployOptions {
  /** Stage name for the configuration rules (pinned stages must pin the agent version). */
  stage?: string;
  /** Run the scheduled sweep (default: as the configuration says). */
  sweep?: boolean;
  /** Concurrency of each function in the sandbox (default: see `sandboxConcurrency`). */
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
/** The stages deployed into each world. */
const deployedStages = new WeakMap<World, Set<string>>();
/** The sandbox's stand-in for the unreserved pool of a function that events invoke. */
const EVENT_CONCURRENCY = 10;

/** Seconds of an EventBridge `rate(...)` expression. */
export function rateSeconds(expression: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!match) throw new RangeError(`the sandbox runs rate(...) schedules only, not ${expression}`);
  const unit = match[2]!.startsWith("minute") ? 60 : match[2]!.startsWith("hour") ? 3600 : 86_400;
  return Number(match[1]) * unit;
}

/** The entries a stage deploys (the wiring leaves out the parts of a path it does not deploy). */
const entries = <K extends string, V>(record: Partial<Record<K, V>>) =>
  (Object.entries(record) as [K, V | undefined][]).filter((entry): entry is [K, V] => entry[1] !== undefined);

/**
 * Distributor must publish the stage's package in the Region, and its pinned version, or every
 * install would fail: the deploy fails first, naming the setting (the stacks' preflight does the
 * same against SSM, functions/preflight.ts).
 */
async function checkAgentPackage(world: World, config: StageConfig): Promise<void> {
  const problem = await agentPackageProblem(
    async (name, versionName) => {
      world.ssm.describeDocument(name, versionName === undefined ? {} : { versionName });
    },
    { packageName: config.agent.package, version: config.agent.version, region: world.region },
  );
  if (problem) throw new Error(`Deploying stage ${config.stage} failed: ${problem}`);
}

/**
 * A function without reserved concurrency draws on the account's unreserved pool (1,000 by
 * default). The sandbox gives it a pool as large as what invokes it can use: its queue source's
 * maximum concurrency, one run at a time when only a schedule invokes it, a few for events (more
 * when a queue source feeds it too).
 */
function sandboxConcurrency(wiring: ServiceWiring, key: FunctionKey): number {
  const fn = wiring.functions[key];
  if (fn?.reservedConcurrency !== undefined) return fn.reservedConcurrency;
  const source = wiring.sqsSources.find((candidate) => candidate.function === key);
  const eventsToo = rulesInvoking(wiring, key).some(({ target }) => "function" in target);
  if (source && !eventsToo) return source.maxConcurrency;
  if (source) return EVENT_CONCURRENCY + source.maxConcurrency;
  return onlyScheduled(wiring, key) ? 1 : EVENT_CONCURRENCY;
}

/** The rules that invoke a function: directly, or through a queue it reads. */
function rulesInvoking(wiring: ServiceWiring, key: FunctionKey): RuleWiring[] {
  const read = new Set(readQueues(wiring, key));
  return Object.values(wiring.rules).filter(({ target }) =>
    "function" in target ? target.function === key : read.has(target.queue),
  );
}

function readQueues(wiring: ServiceWiring, key: FunctionKey): QueueKey[] {
  return wiring.sqsSources.filter((source) => source.function === key).map((source) => source.queue);
}

function onlyScheduled(wiring: ServiceWiring, key: FunctionKey): boolean {
  const rules = rulesInvoking(wiring, key);
  return rules.length > 0 && rules.every(isScheduleRule) && readQueues(wiring, key).length === 0;
}

export async function deployService(
  world: World,
  bus: EventBus,
  runtime: LambdaRuntime,
  input: StageConfigInput,
  options: DeployOptions = {},
  dynamodb: DynamoDbTarget = worldDynamoDb(world, ""),
): Promise<ServiceDeployment> {
  const config = parseStageConfig(options.stage ?? "sandbox", input, "sandbox configuration");
  await checkAgentPackage(world, config);
  const stages = deployedStages.get(world) ?? new Set<string>();
  if (stages.has(config.stage))
    throw new RangeError(`stage ${config.stage} is already deployed in this sandbox`);
  const prefix = stages.size === 0 ? "" : `${config.stage}-`;
  stages.add(config.stage);
  deployedStages.set(world, stages);
  const wiring = ownNames(describeService(config), prefix);
  const queueName = (key: QueueKey) => {
    const queue = wiring.queues[key];
    if (!queue) throw new Error(`stage ${config.stage} deploys no ${key} queue`);
    return queue.name;
  };
  const triggers = options.triggers ?? true;
  // The lease table holds the leases and the launch records alike (functions/core/launch/records.ts).
  const leaseTable = await dynamodb.createTable(
    prefix ? `${SERVICE_NAME}-${config.stage}-sandbox-leases` : LEASE_TABLE,
  );
  // The stage's own documents, as the Foundation stack creates them.
  for (const document of Object.values(wiring.documents)) {
    if (!world.ssm.commandDocument(document.name))
      world.ssm.createDocument({ name: document.name, content: document.content });
  }

  const queues: Partial<Record<QueueKey, Queue>> = {};
  const queueOf = (key: QueueKey): Queue => {
    const queue = queues[key];
    if (!queue) throw new Error(`stage ${config.stage} deploys no ${key} queue`);
    return queue;
  };
  for (const [key, queue] of entries(wiring.queues)) {
    queues[key] = world.sqs.createQueue({
      name: queue.name,
      visibilityTimeoutSeconds: queue.visibilityTimeoutSeconds,
      maxReceiveCount: queue.deadLetter?.maxReceiveCount,
      deadLetterQueueName: queue.deadLetter && queueName(queue.deadLetter.queue),
    });
  }
  const resources = {
    leaseTable,
    queueUrl: (key: QueueKey) => world.sqs.queueUrl(queueOf(key).name),
  };
  const scheduleRuns = (rule: { enabled: boolean }) => triggers && (options.sweep ?? rule.enabled);

  // Each function is deployed, then wired to what invokes it: its queue sources, the rules that
  // reach it (directly or through a queue it reads) and its schedules.
  const functions: Partial<Record<FunctionKey, LambdaFunction>> = {};
  const sources: SqsSourceStats[] = [];
  for (const [key, wired] of entries(wiring.functions)) {
    const rules = rulesInvoking(wiring, key);
    // Replays invoke the other functions by hand, never one that only a schedule invokes.
    if (onlyScheduled(wiring, key) && !rules.some(scheduleRuns)) continue;
    const fn = await deployFunction(runtime, wired, {
      reservedConcurrency: options.concurrency?.[key] ?? sandboxConcurrency(wiring, key),
      env: { ...options.env, ...wired.environment(resources) },
    });
    functions[key] = fn;
    if (triggers) {
      for (const source of wiring.sqsSources.filter((candidate) => candidate.function === key)) {
        sources.push(
          addSqsEventSource(runtime, world, fn, queueOf(source.queue), {
            batchSize: source.batchSize,
            maximumBatchingWindowSeconds: source.maxBatchingWindowSeconds,
            reportBatchItemFailures: source.reportBatchItemFailures,
            maximumConcurrency: source.maxConcurrency,
          }),
        );
      }
    }
    for (const rule of rules) {
      if (isScheduleRule(rule)) {
        if (scheduleRuns(rule)) runtime.schedule(fn, rateSeconds(rule.schedule), `${prefix}${rule.id}`);
      } else if (triggers && rule.enabled) {
        const { target } = rule;
        bus.addRule(`${prefix}${rule.id}`, rule.pattern, (event) => {
          if ("queue" in target) world.sqs.sendMessage(queueOf(target.queue), JSON.stringify(event));
          else runtime.invokeAsync(fn, event);
        });
      }
    }
    const onFailure = wired.asyncInvoke?.onFailure;
    if (onFailure) {
      runtime.onStop(() => {
        for (const record of fn.failureDestination.splice(0)) {
          world.sqs.sendMessage(queueOf(onFailure), JSON.stringify(record));
        }
      });
    }
  }

  for (const hook of wiring.lifecycleHooks) {
    for (const group of hook.groups) {
      putHook(world, group, hook);
    }
  }

  const absent = (what: string, setting: string) => () => {
    throw new Error(`stage ${config.stage} deploys no ${what}: it names no ${setting}`);
  };
  const part = <T>(value: T | undefined, what: string, setting: string) =>
    value === undefined ? { get: absent(what, setting), enumerable: false } : { value, enumerable: true };
  const deployment = {
    config,
    wiring,
    has: { ...config.paths },
    sweep: functions.sweep,
    leaseTable,
    launchSource: sources[0] ?? {
      batches: 0,
      messagesReceived: 0,
      messagesDeleted: 0,
      itemFailures: 0,
      failedBatches: 0,
    },
  };
  return Object.defineProperties(deployment, {
    launch: part(functions.launch, "launch function", "groups"),
    failure: part(functions.failure, "failure function", "deploymentGroups"),
    launchQueue: part(queues.launch, "launch queue", "groups"),
    launchDeadLetterQueue: part(queues.launchDeadLetter, "launch dead-letter queue", "groups"),
    failureDeadLetterQueue: part(queues.failureDeadLetter, "failure dead-letter queue", "deploymentGroups"),
    failureRetryQueue: part(queues.failureRetry, "failure retry queue", "deploymentGroups"),
  }) as ServiceDeployment;
}

export interface StageUpdate {
  /** The hooks drained (their waiting launches completed with CONTINUE) and deleted, per group. */
  drained: DrainReport[];
  /** Groups whose hook was created. */
  added: string[];
}

/**
 * Updates a deployed stage's lifecycle hooks to a new configuration of the same stage, as a stack
 * update does: a hook on a group no longer in `groups` is drained first (functions/drain-hook.ts, the
 * stacks' Custom::LifecycleHookDrain, over the same Auto Scaling API: every launch waiting on it is
 * completed with CONTINUE) and then deleted (DeleteLifecycleHook would ABANDON what still waited); a
 * new group gets the hook. Only the hooks change here: the functions keep the environment they were
 * deployed with (their groups in scope included), and the deployment's `config` and `wiring` become
 * the new ones.
 */
export async function updateStageHooks(
  world: World,
  deployment: ServiceDeployment,
  input: StageConfigInput,
): Promise<StageUpdate> {
  const config = parseStageConfig(deployment.config.stage, input, "sandbox configuration");
  await checkAgentPackage(world, config);
  const wiring = describeService(config);
  const pairs = (hooks: ServiceWiring["lifecycleHooks"]) =>
    hooks.flatMap((hook) => hook.groups.map((group) => ({ hook, group, key: `${hook.name} ${group}` })));
  const before = pairs(deployment.wiring.lifecycleHooks);
  const after = pairs(wiring.lifecycleHooks);
  const update: StageUpdate = { drained: [], added: [] };
  const client = new AutoScalingClient({ region: world.region });
  try {
    for (const { hook, group, key } of before) {
      if (after.some((candidate) => candidate.key === key)) continue;
      update.drained.push(
        await drainLifecycleHook(sdkDrainApi(client), { groupName: group, hookName: hook.name }),
      );
      world.autoScaling.deleteLifecycleHook(group, hook.name);
    }
  } finally {
    client.destroy();
  }
  for (const { hook, group, key } of after) {
    if (before.some((candidate) => candidate.key === key)) continue;
    putHook(world, group, hook);
    update.added.push(group);
  }
  deployment.config = config;
  deployment.wiring = { ...deployment.wiring, lifecycleHooks: wiring.lifecycleHooks };
  return update;
}

/** The wiring with the sandbox's names of its queues: `<prefix><name>` after the service's own prefix. */
function ownNames(wiring: ServiceWiring, prefix: string): ServiceWiring {
  if (!prefix) return wiring;
  const rename = (name: string) =>
    name.startsWith(`${SERVICE_NAME}-`)
      ? `${SERVICE_NAME}-${prefix}${name.slice(SERVICE_NAME.length + 1)}`
      : `${prefix}${name}`;
  const queues = Object.fromEntries(
    entries(wiring.queues).map(([key, queue]) => [key, { ...queue, name: rename(queue.name) }]),
  ) as ServiceWiring["queues"];
  return { ...wiring, queues };
}

function deployFunction(
  runtime: LambdaRuntime,
  wired: FunctionWiring,
  settings: { reservedConcurrency: number; env: Record<string, string> },
): Promise<LambdaFunction> {
  return runtime.deploy({
    name: wired.name,
    module: wired.module,
    exportName: wired.exportName,
    timeoutSeconds: wired.timeoutSeconds,
    memoryMb: wired.memoryMb,
    reservedConcurrency: settings.reservedConcurrency,
    env: settings.env,
    ...(wired.asyncInvoke
      ? {
          asyncInvoke: {
            maximumRetryAttempts: wired.asyncInvoke.retryAttempts,
            maximumEventAgeSeconds: wired.asyncInvoke.maxEventAgeSeconds,
          },
        }
      : {}),
  });
}

/** Puts one of the stage's lifecycle hooks on a group, as the stack would. */
function putHook(world: World, group: string, hook: ServiceWiring["lifecycleHooks"][number]): void {
  world.autoScaling.putLifecycleHook({
    groupName: group,
    hookName: hook.name,
    transition: hook.transition,
    heartbeatTimeout: hook.heartbeatTimeoutSeconds,
    defaultResult: hook.defaultResult,
  });
}
