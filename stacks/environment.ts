import type { StageConfig } from "./config.js";

/**
 * The environment each function reads (functions/core/config.ts), from the stage configuration: one
 * source for the stacks and for the sandbox, which deploys the functions the way the stacks do.
 */
type Environment = Record<string, string>;

/** The previous release's default hook name, still recognised while a group-managed hook may carry it. */
function previousHook(config: StageConfig): Environment {
  return config.hook.previousName ? { PREVIOUS_LIFECYCLE_HOOK_NAME: config.hook.previousName } : {};
}

function agentEnvironment(config: StageConfig, leaseTable: string): Environment {
  const { agent } = config;
  return {
    STAGE: config.stage,
    AGENT_PACKAGE: agent.package,
    AGENT_VERSION: agent.version,
    INSTALL_ATTEMPTS: String(agent.installAttempts),
    POLL_INTERVAL_MS: String(agent.pollIntervalMs),
    DRY_RUN: String(config.dryRun),
    LEASE_TABLE: leaseTable,
    TIME_RESERVE_SECONDS: String(config.timeReserveSeconds),
  };
}

export function launchEnvironment(
  config: StageConfig,
  resources: { leaseTable: string; launchQueueUrl: string },
): Environment {
  const { launch, hook } = config;
  return {
    ...agentEnvironment(config, resources.leaseTable),
    // A short event-completion timeout (20 s) keeps half of it for the step: the reserve (what is left
    // after the step's last throttled completion to store, report and hand messages back) is at most
    // half the function's timeout.
    TIME_RESERVE_SECONDS: String(Math.min(config.timeReserveSeconds, Math.floor(launch.timeoutSeconds / 2))),
    // Names, or "*" for every group (said by the stage); never empty: no groups, no launch function.
    TARGET_GROUPS: config.groups.join(","),
    LIFECYCLE_HOOK_NAME: hook.name,
    ...previousHook(config),
    FAILURE_RESULT: launch.failureResult,
    REGISTRATION_TIMEOUT_SECONDS: String(launch.registrationTimeoutSeconds),
    LAUNCH_QUEUE_URL: resources.launchQueueUrl,
    RESUME_AFTER_SECONDS: String(launch.resumeAfterSeconds),
    LAUNCH_COMPLETION: launch.completion,
    REGISTRATION_POLL_SECONDS: String(launch.registrationPollSeconds),
    COMMAND_OVERDUE_SECONDS: String(launch.commandOverdueSeconds),
  };
}

export function failureEnvironment(
  config: StageConfig,
  resources: { leaseTable: string; retryQueueUrl: string },
): Environment {
  const { failure } = config;
  return {
    ...agentEnvironment(config, resources.leaseTable),
    // Pairs, or "*" for every deployment group; never empty: none, no failure function.
    TARGET_DEPLOYMENT_GROUPS: config.deploymentGroups.join(","),
    MAX_REDEPLOYS: String(failure.maxRedeploys),
    REDEPLOY_WHEN: failure.redeployWhen,
    REGISTRATION_TIMEOUT_SECONDS: String(failure.registrationTimeoutSeconds),
    FAILURE_RETRY_QUEUE_URL: resources.retryQueueUrl,
    BUSY_GROUP_RETRY_HOURS: String(failure.busyGroupRetryHours),
    ROLLBACK_WAIT_SECONDS: String(failure.rollbackWaitSeconds),
  };
}

export function sweepEnvironment(
  config: StageConfig,
  resources: { launchQueueUrl: string; leaseTable: string },
): Environment {
  return {
    // Every function knows its stage: it is the `stage` dimension of its metrics.
    STAGE: config.stage,
    LEASE_TABLE: resources.leaseTable,
    TARGET_GROUPS: config.groups.join(","),
    LIFECYCLE_HOOK_NAME: config.hook.name,
    ...previousHook(config),
    LAUNCH_QUEUE_URL: resources.launchQueueUrl,
    STALE_AFTER_SECONDS: String(config.sweep.staleAfterSeconds),
    DRY_RUN: String(config.dryRun),
  };
}
