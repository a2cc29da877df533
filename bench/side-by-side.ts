import { LAUNCH_TRANSITION } from "../functions/core/contract.js";
import { skipIdleTime } from "../sandbox/runtime/idle-skip.js";
import type { LambdaFunction } from "../sandbox/runtime/lambda.js";
import { createSandbox } from "../sandbox/sandbox.js";
import { launchFailures } from "../sandbox/scenarios/do-no-harm.js";
import { addGroupWithDeployments } from "../sandbox/scenarios/fleet.js";
import { harmFigures, INSTALLERS, stageScopeOf, watchHarm } from "../sandbox/scenarios/harm-watch.js";
import type { RateLimit } from "../sandbox/server/traffic.js";
import { compareVersions } from "../sandbox/world/random.js";
import type { Queue } from "../sandbox/world/sqs.js";
import { parseStageConfig, type StageConfigInput } from "../stacks/config.js";
import { launchEventPattern } from "../stacks/patterns.js";
import { gbSecondsPer1000 } from "./billing.js";
import { mergeConfig } from "./burst.js";
import {
  type HarmSummary,
  ofService,
  perInstance,
  round,
  seedMathRandom,
  startRunClock,
  summarizeHarm,
  TERMINATED_PURPOSE,
  tallySsmCalls,
  waitUntilSettled,
} from "./harness.js";
import { overheads } from "./overhead.js";

/**
 * The same fleet, seed, fault model and throttling, three ways of getting the CodeDeploy agent onto
 * new instances:
 * - `associationOnly`: a State Manager association installs the agent when an instance registers
 *   with SSM; no lifecycle hook holds the instance, so CodeDeploy's launch deployment races the install
 *   (the original fix);
 * - `perInstancePolling`: a lifecycle hook and one asynchronous Lambda invocation per launch event that
 *   polls its own instance (bench/alternatives/per-instance-polling.ts, the AWS samples' pattern);
 * - `service`: this service as the stacks deploy it, with event completion (the default);
 * - `servicePolling`: the same with `launch.completion: "polling"` (one invocation per batch polls
 *   SSM until its installs end).
 */
export const ALTERNATIVES = ["associationOnly", "perInstancePolling", "service", "servicePolling"] as const;
export type Alternative = (typeof ALTERNATIVES)[number];

/** Faults of the fleet, the same for every alternative. */
export interface FaultModel {
  /** Probability that a Distributor install of the agent fails. */
  installFails: number;
  /** Probability that an install reports Success while the agent does not run afterwards. */
  installSucceedsWithoutAgent: number;
  /** Share of launches from an AMI with an outdated agent baked in (running at boot). */
  bakedOutdatedAgentShare: number;
  /** The outdated agent's version (older than the version that carries the fix). */
  bakedAgentVersion: string;
}

export const SIDE_BY_SIDE_FAULTS: FaultModel = {
  installFails: 0.05,
  installSucceedsWithoutAgent: 0.02,
  bakedOutdatedAgentShare: 0.1,
  bakedAgentVersion: "1.6.0",
};

export interface AlternativeOptions {
  instances: number;
  seed: number | string;
  clockScale: number;
  rates: Record<string, RateLimit>;
  faults: FaultModel;
  agentWaitSeconds: number;
  /** Stage configuration of the service (and the hook settings the per-instance pattern copies). */
  config?: StageConfigInput;
}

export interface AlternativeResult {
  alternative: Alternative;
  agentWaitSeconds: number;
  instances: number;
  /** Instances launched, replacements included. */
  launched: number;
  inService: number;
  /** In service with the agent running at (or above) the version that carries the fix. */
  inServiceWithCurrentAgent: number;
  /** Instances abandoned (by any hook) and replaced. */
  replaced: number;
  launchDeployments: number;
  launchDeploymentsFailed: number;
  /** Failed launch deployments as a share of the launch deployments that ended. */
  launchDeploymentsFailedShare: number;
  /**
   * Why launch deployments failed, by count: no agent picked an event up, the agent was outdated, the
   * agent restarted under the deployment (and whose install restarted it), the instance went away.
   */
  launchDeploymentFailures: Record<string, number>;
  /** Failed launch deployments the alternative itself caused (its install restarted the agent, its hook abandoned a ready instance). */
  launchDeploymentFailuresCausedByIt: number;
  /** What "first, do no harm" forbids, done during the run (sandbox/scenarios/harm-watch.ts). */
  harm: HarmSummary;
  /** SSM requests the server answered (throttled retries included). */
  ssmCalls: number;
  ssmCallsPerInstance: number;
  ssmCallsByOperation: Record<string, number>;
  autoScalingCallsPerInstance: number;
  /** Over each instance's floor, for the instances its hook let in (bench/overhead.ts); null when none was measured. */
  overheadP50: number | null;
  overheadP95: number | null;
  /** GB-seconds of its installing function per 1,000 instances launched; null when it has none. */
  lambdaGbSecondsPer1000: number | null;
  /** SSM calls as the callers asked for them (before SDK retries), by purpose. */
  ssmCallsByPurpose: Record<string, number>;
  /**
   * SSM calls asked for (before SDK retries) about instances still alive, per instance: without the
   * polls of instances that were already terminated.
   */
  ssmCallsPerInstanceOnLiveInstances: number;
  /** Throttled requests, all services. */
  throttled: number;
  throttledByOperation: Record<string, number>;
  /** Lifecycle actions of the installing hook (ours, or the per-instance pattern's) that timed out. */
  hookTimeouts: number;
  /** Lifecycle actions of any hook (CodeDeploy's included) that timed out. */
  lifecycleTimeouts: number;
  duplicateInstalls: number;
  /** What the fault model actually drew in this run. */
  realized: { bakedOutdatedAgent: number; installsFailed: number; installsWithoutAgent: number };
  settled: boolean;
  awsSeconds: number;
  realSeconds: number;
  clockScale: number;
  eventLoopDelayP99Seconds: number;
  /** AWS seconds skipped because nothing could happen in them. */
  skippedSeconds: number;
}

export const SIDE_BY_SIDE_GROUP = "fleet";
export const PER_INSTANCE_FUNCTION = "agentfix-bench-per-instance-polling";
/** The AWS samples' functions run up to Lambda's limit while they poll. */
const PER_INSTANCE_TIMEOUT_SECONDS = 900;
/** Lambda's default account concurrency: one invocation per launch event is not held back. */
const UNRESERVED_CONCURRENCY = 1000;

export async function runAlternative(
  alternative: Alternative,
  options: AlternativeOptions,
): Promise<AlternativeResult> {
  const restoreRandom = seedMathRandom(`side-by-side/${options.seed}/${alternative}`);
  const runClock = startRunClock(options.clockScale);
  const { faults } = options;
  const sandbox = await createSandbox({
    seed: options.seed,
    clockScale: options.clockScale,
    traffic: { rateLimits: options.rates },
    world: {
      ssm: {
        installFailureProbability: faults.installFails,
        installSucceedsWithoutAgentProbability: faults.installSucceedsWithoutAgent,
      },
      codeDeploy: { agentWaitSeconds: options.agentWaitSeconds },
    },
  });
  try {
    const { world, runtime, bus } = sandbox;
    const pair = addGroupWithDeployments(world, {
      name: SIDE_BY_SIDE_GROUP,
      maxSize: options.instances * 2,
      image: {
        imageId: "ami-0fleet-mixed",
        bakedAgent: { version: faults.bakedAgentVersion, running: true },
        bakedAgentShare: faults.bakedOutdatedAgentShare,
      },
    });
    const completion = alternative === "servicePolling" ? "polling" : "events";
    const stage = mergeConfig(
      mergeConfig({ groups: [SIDE_BY_SIDE_GROUP], deploymentGroups: [pair] }, options.config),
      { launch: { completion } },
    );
    const config = parseStageConfig("sandbox", stage, "benchmark configuration");
    const functions: LambdaFunction[] = [];
    let installer: LambdaFunction | undefined;
    const queues: Queue[] = [];
    if (alternative === "associationOnly") {
      // Applied when an instance registers; its cron schedule does not fall within the run.
      world.associations.create({
        id: "association-codedeploy-agent",
        groupNames: [SIDE_BY_SIDE_GROUP],
        packageName: config.agent.package,
        version: config.agent.version,
        scheduleSeconds: 0,
      });
    } else if (alternative === "perInstancePolling") {
      world.autoScaling.putLifecycleHook({
        groupName: SIDE_BY_SIDE_GROUP,
        hookName: config.hook.name,
        transition: LAUNCH_TRANSITION,
        heartbeatTimeout: config.hook.heartbeatTimeoutSeconds,
        defaultResult: config.hook.defaultResult,
      });
      const fn = await runtime.deploy({
        name: PER_INSTANCE_FUNCTION,
        module: "bench/alternatives/per-instance-polling.ts",
        timeoutSeconds: PER_INSTANCE_TIMEOUT_SECONDS,
        // The service's launch memory, so that GB-seconds compare durations.
        memoryMb: config.launch.memoryMb,
        reservedConcurrency: UNRESERVED_CONCURRENCY,
        env: {
          POLL_INTERVAL_MS: String(config.agent.pollIntervalMs),
          AGENT_PACKAGE: config.agent.package,
        },
      });
      bus.addRule(
        "PerInstanceLaunchRule",
        launchEventPattern([SIDE_BY_SIDE_GROUP], config.hook.name),
        (event) => runtime.invokeAsync(fn, event, { maximumRetryAttempts: 2 }),
      );
      functions.push(fn);
      installer = fn;
    } else {
      const service = await sandbox.deployService(stage);
      functions.push(service.launch, service.failure);
      installer = service.launch;
      queues.push(service.launchQueue);
    }

    const bakedAtLaunch = new Set<string>();
    const unsubscribe = world.trace.subscribe((entry) => {
      // Recorded as the instance is created, before anything can change its agent.
      if (entry.kind !== "instance.launched" || !entry.instanceId) return;
      if (world.instances.get(entry.instanceId)?.agent.version) bakedAtLaunch.add(entry.instanceId);
    });
    const purposes = await tallySsmCalls(world);
    const watch = watchHarm(sandbox);
    const skip = await skipIdleTime(sandbox);
    const since = world.now();
    world.autoScaling.setDesiredCapacity(SIDE_BY_SIDE_GROUP, options.instances);
    const settled = await waitUntilSettled(
      sandbox,
      { groups: [SIDE_BY_SIDE_GROUP], deploymentGroups: [pair], functions, queues },
      // Long enough for CodeDeploy's waits, the replacements they cause, and the per-instance pattern's
      // invocations with their two asynchronous retries to end.
      { quietSeconds: 120, timeoutSeconds: 2 * options.agentWaitSeconds + 3 * 3600 },
    );
    const { skippedSeconds } = skip.stop();
    unsubscribe();
    watch.stop();
    // Every alternative installs for the same stage configuration, under its hook (or none).
    const stages = [stageScopeOf(config)];
    const harm = harmFigures(sandbox, watch.records, stages);
    const awsSeconds = Math.round((world.now() - since) / 1000);

    const launched = [...world.instances.values()].filter(
      (instance) => instance.groupName === SIDE_BY_SIDE_GROUP && instance.launchedAt >= since,
    );
    const inService = launched.filter((instance) => instance.lifecycleState === "InService");
    const current = inService.filter(
      (instance) =>
        instance.agent.running &&
        instance.agent.version !== null &&
        compareVersions(instance.agent.version, world.codeDeploy.fixedInAgentVersion) >= 0,
    );
    const launchDeployments = [...world.codeDeploy.deployments.values()].filter(
      (deployment) =>
        deployment.creator === "autoscaling" &&
        deployment.createTime >= since &&
        `${deployment.applicationName}/${deployment.deploymentGroupName}` === pair,
    );
    const failed = launchDeployments.filter((deployment) => deployment.status === "Failed").length;
    const ended = launchDeployments.filter((deployment) =>
      ["Succeeded", "Failed", "Stopped"].includes(deployment.status),
    ).length;
    const actions = world.autoScaling.actions.filter(
      (action) => action.groupName === SIDE_BY_SIDE_GROUP && action.startedAt >= since,
    );
    const trace = world.trace.entries.filter((entry) => entry.at >= since);
    // Whose installs are the alternative's own: the association's, the polling function's
    // AWS-ConfigureAWSPackage commands, or the service's install document.
    const ownInstaller: Record<Alternative, (by: string) => boolean> = {
      associationOnly: (by) => by === INSTALLERS.association,
      perInstancePolling: (by) => by === INSTALLERS.distributorCommand,
      service: (by) => by === stages[0]!.installDocument,
      servicePolling: (by) => by === stages[0]!.installDocument,
    };
    const failures = launchFailures(sandbox, launchDeployments, watch.records, stages, harm, {
      installs: (restart) => ownInstaller[alternative](restart.by),
      name: "it",
    });
    // Null without a hook, or without an instance let in after a successful install to measure.
    const overhead =
      alternative === "associationOnly" ? undefined : overheads(world, config.hook.name, since);
    const measured = overhead && overhead.measured > 0 ? overhead : undefined;
    const { realSeconds, eventLoopDelayP99Seconds } = runClock.stop();
    return {
      alternative,
      agentWaitSeconds: options.agentWaitSeconds,
      instances: options.instances,
      launched: launched.length,
      inService: inService.length,
      inServiceWithCurrentAgent: current.length,
      replaced: launched.filter((instance) => instance.milestones.abandoned !== undefined).length,
      launchDeployments: launchDeployments.length,
      launchDeploymentsFailed: failed,
      launchDeploymentsFailedShare: round(failed / Math.max(1, ended), 4),
      launchDeploymentFailures: failures.byCause,
      launchDeploymentFailuresCausedByIt: failures.causedByService,
      harm: summarizeHarm(watch.records, harm),
      ssmCalls: sandbox.counters.total("SSM"),
      ssmCallsPerInstance: perInstance(sandbox.counters.total("SSM"), launched.length),
      ssmCallsByOperation: ofService(sandbox.counters.calls, "SSM"),
      autoScalingCallsPerInstance: perInstance(sandbox.counters.total("AutoScaling"), launched.length),
      overheadP50: measured?.overheadP50 ?? null,
      overheadP95: measured?.overheadP95 ?? null,
      lambdaGbSecondsPer1000: installer ? gbSecondsPer1000(installer.invocations, launched.length) : null,
      ssmCallsByPurpose: Object.fromEntries(Object.entries(purposes.total()).sort((a, b) => b[1] - a[1])),
      ssmCallsPerInstanceOnLiveInstances: perInstance(
        Object.entries(purposes.total())
          .filter(([purpose]) => !purpose.includes(TERMINATED_PURPOSE))
          .reduce((sum, [, count]) => sum + count, 0),
        launched.length,
      ),
      throttled: sandbox.counters.totalThrottled(),
      throttledByOperation: { ...sandbox.counters.throttled },
      hookTimeouts: actions.filter(
        (action) => action.hookName === config.hook.name && action.completed?.by === "timeout",
      ).length,
      lifecycleTimeouts: actions.filter((action) => action.completed?.by === "timeout").length,
      duplicateInstalls: trace.filter((entry) => entry.kind === "install.duplicate").length,
      realized: {
        bakedOutdatedAgent: bakedAtLaunch.size,
        installsFailed: trace.filter((entry) => entry.kind === "install.failed").length,
        installsWithoutAgent: trace.filter(
          (entry) => entry.kind === "install.succeeded" && entry.data?.agentRunning === false,
        ).length,
      },
      settled,
      awsSeconds,
      realSeconds,
      clockScale: options.clockScale,
      eventLoopDelayP99Seconds,
      skippedSeconds,
    };
  } finally {
    await sandbox.close();
    restoreRandom();
  }
}
