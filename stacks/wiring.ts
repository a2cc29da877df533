import { installDocumentContent } from "../functions/core/agent/documents.js";
import { installDocumentName, LAUNCH_TRANSITION, SERVICE_NAME } from "../functions/core/contract.js";
import type { StageConfig } from "./config.js";
import { failureEnvironment, launchEnvironment, sweepEnvironment } from "./environment.js";
import {
  commandEndedEventPattern,
  deploymentFailureEventPattern,
  type EventPattern,
  launchEventPattern,
} from "./patterns.js";

// The service's wiring, described once from the stage configuration: its functions and their
// settings, the queues between them, the SQS event source, the EventBridge rules with their retry
// policies, the asynchronous-invoke policies and the lifecycle hooks. The stacks build their
// resources from this description (LaunchPath, FailurePath, Sweep) and the sandbox deploys from it
// (sandbox/service.ts), so a setting changed here changes both. Plain data: nothing here imports CDK
// or an SDK.

/** The last part of a function's name, `agentfix-<stage>-<role>`; also its handler module's name. */
export type FunctionRole = "launch" | "deployment-failure" | "sweep";
export type FunctionKey = "launch" | "failure" | "sweep";
export type QueueKey = "launch" | "launchDeadLetter" | "failureDeadLetter" | "failureRetry";

/**
 * Where a deployment keeps the resources a function's environment points at: CloudFormation
 * references in the stacks, names and URLs in the sandbox.
 */
export interface ResourceNames {
  leaseTable: string;
  queueUrl(queue: QueueKey): string;
}

/** What Lambda does with an event it accepted asynchronously and could not process. */
export interface AsyncInvokeWiring {
  /** Retries after a function error (Lambda allows 0-2). */
  retryAttempts: number;
  /** Age after which Lambda stops retrying an event. */
  maxEventAgeSeconds: number;
  /** Queue that receives a record of every event that still failed. */
  onFailure?: QueueKey;
}

export interface FunctionWiring {
  /** Construct id in its stack, the prefix of the logical id. */
  id: string;
  role: FunctionRole;
  /** `agentfix-<stage>-<role>`. */
  name: string;
  /** What Lambda runs: `<bundle module>.<export>` (each function's bundle is `index.mjs`). */
  handler: string;
  /** The handler's source module, relative to the project root. */
  module: string;
  exportName: string;
  description: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** The variables the function reads (functions/core/config.ts), given where the resources are. */
  environment(resources: ResourceNames): Record<string, string>;
  /** Reserved concurrency; undefined draws on the account's unreserved pool. */
  reservedConcurrency?: number;
  /** Undefined: Lambda's defaults (2 retries, 6 hours, no destination). */
  asyncInvoke?: AsyncInvokeWiring;
}

export interface QueueWiring {
  /** Construct id in its stack. */
  id: string;
  /**
   * The queue's name where the deployment chooses it (the sandbox). The stacks leave the name to
   * CloudFormation, so a replaced queue never collides with the old one; they publish the URL.
   */
  name: string;
  /** Undefined: the SQS default, 30 seconds. */
  visibilityTimeoutSeconds?: number;
  /** Undefined: the SQS default, 4 days. */
  retentionSeconds?: number;
  /** Whose dead-letter queue this is, when it is one (it then needs no dead-letter queue of its own). */
  deadLetterOf?: string;
  /** The queue's redrive policy: where a message goes after maxReceiveCount receives. */
  deadLetter?: { queue: QueueKey; maxReceiveCount: number };
}

/** A Lambda event source mapping that feeds a function from a queue. */
export interface SqsSourceWiring {
  queue: QueueKey;
  function: FunctionKey;
  batchSize: number;
  maxBatchingWindowSeconds: number;
  /** The function reports the failed items of a batch; only those come back. */
  reportBatchItemFailures: boolean;
  /** Batches in flight at once. */
  maxConcurrency: number;
}

/** A rule's target, with EventBridge's retry policy for deliveries that fail. */
export type TargetWiring = ({ queue: QueueKey } | { function: FunctionKey }) & {
  retryAttempts: number;
  maxEventAgeSeconds: number;
  /** Where EventBridge puts an event it could not deliver. */
  deadLetterQueue?: QueueKey;
};

interface RuleBase {
  /** Construct id in its stack. */
  id: string;
  description: string;
  enabled: boolean;
  target: TargetWiring;
}
export interface EventRuleWiring extends RuleBase {
  pattern: EventPattern;
}
export interface ScheduleRuleWiring extends RuleBase {
  /** `rate(...)` or `cron(...)`. */
  schedule: string;
}
export type RuleWiring = EventRuleWiring | ScheduleRuleWiring;

/** One lifecycle hook, put on each of `groups`. */
export interface LifecycleHookWiring {
  /**
   * Construct id prefix in its stack; the group's name completes it (hookConstructId), never its
   * position, so removing a group from the middle of `groups` replaces no other group's hook.
   */
  id: string;
  name: string;
  transition: string;
  heartbeatTimeoutSeconds: number;
  defaultResult: "ABANDON" | "CONTINUE";
  groups: readonly string[];
}

/** One of the stage's own SSM Command documents. */
export interface DocumentWiring {
  /** Construct id in its stack. */
  id: string;
  name: string;
  /** The schemaVersion 2.2 document. */
  content: Record<string, unknown>;
}

/**
 * A stage deploys only the paths it names: the launch path (launch function, its queues, rules,
 * hooks and the sweep) when it names `groups`, the failure path (failure function, its rule, retry
 * and dead-letter queues) when it names `deploymentGroups`. What a stage does not deploy is absent.
 */
export interface ServiceWiring {
  stage: string;
  /** The document the functions (and the association) send: install and verify. */
  documents: { install: DocumentWiring };
  functions: { launch?: FunctionWiring; failure?: FunctionWiring; sweep?: FunctionWiring };
  /** In creation order: a dead-letter queue comes before the queue that redrives to it. */
  queues: {
    launchDeadLetter?: QueueWiring;
    launch?: QueueWiring;
    failureDeadLetter?: QueueWiring;
    failureRetry?: QueueWiring;
  };
  sqsSources: SqsSourceWiring[];
  rules: {
    launch?: EventRuleWiring;
    commandEnded?: EventRuleWiring;
    failure?: EventRuleWiring;
    sweep?: ScheduleRuleWiring;
  };
  lifecycleHooks: LifecycleHookWiring[];
}

/** The construct id of a hook on one group: from the group's name, so it never depends on list order. */
export function hookConstructId(hook: Pick<LifecycleHookWiring, "id">, group: string): string {
  // "/" separates construct paths; escaping "%" first keeps distinct names distinct.
  return `${hook.id}-${group.replaceAll("%", "%25").replaceAll("/", "%2F")}`;
}

/** A part of the wiring the stage deploys; throws with the reason when the stage does not deploy it. */
export function wired<T>(part: T | undefined, what: string, stage: string): T {
  if (part === undefined)
    throw new Error(
      `stage ${stage} deploys no ${what}: it names no ${what.startsWith("failure") ? "deploymentGroups" : "groups"}`,
    );
  return part;
}

/** How long a message nobody could process is kept for inspection and redrive (the SQS maximum). */
const DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600;
/** Receives of a failure retry record whose processing throws, before it goes to the dead-letter queue. */
const FAILURE_RETRY_RECEIVES = 5;
/** Deferred failures handled at once (an SQS event source allows 2 to 1,000). */
const FAILURE_RETRY_CONCURRENCY = 5;

/**
 * Functions have predictable names, `agentfix-<stage>-<role>`, so operators and tools
 * (`npm run replay`, the console's test events, CloudWatch Logs under /aws/lambda/<name>) find them.
 */
export function serviceFunctionName(stage: string, role: FunctionRole | "preflight" | "drain-hook"): string {
  return `${SERVICE_NAME}-${stage}-${role}`;
}

function handlerOf(role: FunctionRole): Pick<FunctionWiring, "handler" | "module" | "exportName"> {
  return { handler: "index.handler", module: `functions/${role}.ts`, exportName: "handler" };
}

export function isScheduleRule(rule: RuleWiring): rule is ScheduleRuleWiring {
  return "schedule" in rule;
}

/** The wiring of one stage. */
export function describeService(config: StageConfig): ServiceWiring {
  const full = describeEverything(config);
  const { launch, failure } = config.paths;
  const pick = <T extends object>(record: T, keep: (key: keyof T) => boolean): T =>
    Object.fromEntries(Object.entries(record).filter(([key]) => keep(key as keyof T))) as T;
  const launchParts = new Set<string>(["launch", "sweep", "launchDeadLetter", "commandEnded"]);
  const inPath = (key: string) => (launchParts.has(key) ? launch : failure);
  return {
    ...full,
    functions: pick(full.functions, (key) => inPath(key)),
    queues: pick(full.queues, (key) => inPath(key)),
    rules: pick(full.rules, (key) => inPath(key)),
    sqsSources: full.sqsSources.filter((source) => inPath(source.function)),
    lifecycleHooks: launch ? full.lifecycleHooks : [],
  };
}

/** The pattern of a rule describeService leaves out (its path is not deployed). */
const NOT_DEPLOYED: EventPattern = { source: [], "detail-type": [] };

type FullWiring = Omit<ServiceWiring, "functions" | "queues" | "rules"> & {
  functions: Required<ServiceWiring["functions"]>;
  queues: Required<ServiceWiring["queues"]>;
  rules: Required<ServiceWiring["rules"]>;
};

function describeEverything(config: StageConfig): FullWiring {
  const { stage, launch, failure, sweep, hook } = config;
  const installDocument = installDocumentName(stage);
  return {
    stage,
    documents: {
      install: {
        id: "InstallAgentDocument",
        name: installDocument,
        content: installDocumentContent(stage),
      },
    },
    functions: {
      launch: {
        id: "LaunchFunction",
        role: "launch",
        name: serviceFunctionName(stage, "launch"),
        ...handlerOf("launch"),
        description: "Installs and verifies the CodeDeploy agent on instances held by the launch hook",
        timeoutSeconds: launch.timeoutSeconds,
        memoryMb: launch.memoryMb,
        ...(launch.reservedConcurrency > 0 ? { reservedConcurrency: launch.reservedConcurrency } : {}),
        environment: (resources) =>
          launchEnvironment(config, {
            leaseTable: resources.leaseTable,
            launchQueueUrl: resources.queueUrl("launch"),
          }),
      },
      failure: {
        id: "DeploymentFailureFunction",
        role: "deployment-failure",
        name: serviceFunctionName(stage, "deployment-failure"),
        ...handlerOf("deployment-failure"),
        description: "Upgrades the CodeDeploy agent and redeploys when an outdated agent broke a deployment",
        timeoutSeconds: failure.timeoutSeconds,
        memoryMb: failure.memoryMb,
        environment: (resources) =>
          failureEnvironment(config, {
            leaseTable: resources.leaseTable,
            retryQueueUrl: resources.queueUrl("failureRetry"),
          }),
        // What the function could not process stays in the failure path's dead-letter queue:
        // https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        asyncInvoke: {
          retryAttempts: failure.retryAttempts,
          maxEventAgeSeconds: failure.maxEventAgeSeconds,
          onFailure: "failureDeadLetter",
        },
      },
      sweep: {
        id: "SweepFunction",
        role: "sweep",
        name: serviceFunctionName(stage, "sweep"),
        ...handlerOf("sweep"),
        description: "Re-enqueues instances stuck in Pending:Wait on the launch hook",
        timeoutSeconds: sweep.timeoutSeconds,
        memoryMb: sweep.memoryMb,
        environment: (resources) =>
          sweepEnvironment(config, {
            launchQueueUrl: resources.queueUrl("launch"),
            leaseTable: resources.leaseTable,
          }),
        // The next run comes within minutes: a failed run is not retried, it shows in the error alarm.
        asyncInvoke: { retryAttempts: 0, maxEventAgeSeconds: 300 },
      },
    },
    queues: {
      launchDeadLetter: {
        id: "LaunchDeadLetterQueue",
        name: `${SERVICE_NAME}-launch-dlq`,
        deadLetterOf: "the launch queue",
        retentionSeconds: DEAD_LETTER_RETENTION_SECONDS,
      },
      launch: {
        id: "LaunchQueue",
        name: `${SERVICE_NAME}-launch`,
        // Above the function timeout, so a batch is never redelivered while still being worked on,
        // and below the hook's heartbeat timeout (checked in stacks/config.ts), so a pending instance
        // comes back before its last heartbeat runs out.
        visibilityTimeoutSeconds: launch.visibilityTimeoutSeconds,
        deadLetter: { queue: "launchDeadLetter", maxReceiveCount: launch.maxReceiveCount },
      },
      failureDeadLetter: {
        id: "FailureDeadLetterQueue",
        name: `${SERVICE_NAME}-failure-dlq`,
        deadLetterOf: "the failure path, and its function's failure destination",
        retentionSeconds: DEAD_LETTER_RETENTION_SECONDS,
      },
      // Failures the function cannot act on yet (another deployment runs in the group, a rollback may
      // still be created) come back through this queue: the function re-sends each one with a delay
      // (SendMessage DelaySeconds, up to 15 minutes) until it can act, for up to busyGroupRetryHours.
      // A record whose processing fails comes back after the visibility timeout, above the function
      // timeout (CreateEventSourceMapping requires it), and lands in the failure dead-letter queue.
      failureRetry: {
        id: "FailureRetryQueue",
        name: `${SERVICE_NAME}-failure-retry`,
        visibilityTimeoutSeconds: 2 * failure.timeoutSeconds,
        deadLetter: { queue: "failureDeadLetter", maxReceiveCount: FAILURE_RETRY_RECEIVES },
      },
    },
    // The queue batches a morning scale-out, buffers bursts and keeps unfinished work across
    // invocations; the maximum concurrency keeps the function from being throttled.
    sqsSources: [
      {
        queue: "launch",
        function: "launch",
        batchSize: launch.batchSize,
        maxBatchingWindowSeconds: launch.maxBatchingWindowSeconds,
        reportBatchItemFailures: true,
        maxConcurrency: launch.maxConcurrency,
      },
      // One deferred failure per invocation: an upgrade can take most of the function's time budget.
      {
        queue: "failureRetry",
        function: "failure",
        batchSize: 1,
        maxBatchingWindowSeconds: 0,
        reportBatchItemFailures: true,
        maxConcurrency: FAILURE_RETRY_CONCURRENCY,
      },
    ],
    rules: {
      launch: {
        id: "LaunchLifecycleRule",
        description: `Launch lifecycle actions of the ${hook.name} hook on the groups in scope`,
        pattern: config.paths.launch
          ? launchEventPattern(config.groups, [hook.name, ...(hook.previousName ? [hook.previousName] : [])])
          : NOT_DEPLOYED,
        enabled: true,
        // EventBridge's maxima: an instance waits on the hook for every launch event not delivered.
        // What cannot be delivered lands in the same dead-letter queue as messages that fail
        // processing: both are launch events, and a redrive sends them all back to the launch queue.
        target: {
          queue: "launch",
          retryAttempts: 185,
          maxEventAgeSeconds: 24 * 3600,
          deadLetterQueue: "launchDeadLetter",
        },
      },
      // Event completion: an ended install of this stage's document wakes the launch path at once.
      // A lost event costs time, not the instance: the launch message comes back when the install is
      // overdue and the launch path looks it up.
      commandEnded: {
        id: "InstallEndedRule",
        description: `Ended invocations of the ${installDocument} document`,
        pattern: commandEndedEventPattern(installDocument),
        enabled: launch.completion === "events",
        target: {
          queue: "launch",
          retryAttempts: 185,
          maxEventAgeSeconds: 3600,
          deadLetterQueue: "launchDeadLetter",
        },
      },
      failure: {
        id: "DeploymentFailureRule",
        description: "Failed CodeDeploy deployments of the deployment groups in scope",
        pattern: config.paths.failure ? deploymentFailureEventPattern(config.deploymentGroups) : NOT_DEPLOYED,
        enabled: true,
        // When EventBridge cannot invoke the function:
        // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html
        target: {
          function: "failure",
          retryAttempts: 8,
          maxEventAgeSeconds: failure.maxEventAgeSeconds,
          deadLetterQueue: "failureDeadLetter",
        },
      },
      sweep: {
        id: "SweepSchedule",
        description: "Runs the sweep of instances stuck on the launch hook",
        schedule: sweep.schedule,
        enabled: sweep.enabled,
        target: { function: "sweep", retryAttempts: 2, maxEventAgeSeconds: 300 },
      },
    },
    // Our hook on each group in scope, when the stack manages it; EventBridge receives its events,
    // so it has no notification target and no role.
    lifecycleHooks:
      hook.managedBy === "stack"
        ? [
            {
              id: "LaunchHook",
              name: hook.name,
              transition: LAUNCH_TRANSITION,
              heartbeatTimeoutSeconds: hook.heartbeatTimeoutSeconds,
              defaultResult: hook.defaultResult,
              groups: [...config.groups],
            },
          ]
        : [],
  };
}
