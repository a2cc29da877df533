import { parseMarker } from "../../functions/core/failure/redeploy.js";
import type { Sandbox } from "../sandbox.js";
import type { Instance } from "../world/instances.js";
import { compareVersions } from "../world/random.js";
import { type RecoveryFigures, recoveryFigures } from "./recovery.js";

/** Which part of the world the figures are about: the groups (and hook) the service manages. */
export interface Scope {
  groups: string[];
  hookName: string;
  /** The hooks of further stages, when the groups belong to more than one. */
  otherHookNames?: string[];
  /** application/deployment-group pairs whose deployments count. */
  deploymentGroups: string[];
  /** Only instances launched at or after this AWS time (long-lived instances are not counted). */
  since: number;
}

export interface Percentiles {
  p50: number;
  p95: number;
  max: number;
}

export interface Figures extends RecoveryFigures {
  /** Instances launched in scope during the run (replacements included). */
  instances: number;
  inService: number;
  /** In service with the agent running at (or above) the version that carries the fix, confirmed by the verification script. */
  verified: number;
  abandoned: number;
  /** Lifecycle actions in scope that ran out of heartbeat (any hook). */
  lifecycleTimeouts: number;
  /** Instances that ended neither in service with a verified agent nor abandoned with a reason. */
  lost: number;
  lostInstances: { instanceId: string; why: string }[];
  /** Lifecycle actions of the service's hook still waiting at the end. */
  waitingActions: number;
  duplicateInstalls: number;
  launchDeploymentsFailed: number;
  launchDeploymentsSucceeded: number;
  redeploys: number;
  redeploysSucceeded: number;
  apiCalls: Record<string, number>;
  throttled: number;
  /** AWS seconds from Pending:Wait to the service's CompleteLifecycleAction. */
  hookToCompleteSeconds: Percentiles;
}

/** Whether a description carries the service's redeploy marker (any stage's, or an earlier release's). */
export function isRedeploy(description: string | undefined): boolean {
  return parseMarker(description) !== undefined;
}

/** The original failure a redeployment's marker names, or undefined for a deployment with no marker. */
export function redeployOriginal(description: string | undefined): string | undefined {
  return parseMarker(description)?.originalDeploymentId;
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank.
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  const round = (value: number) => Math.round(value * 10) / 10;
  return { p50: round(rank(0.5)), p95: round(rank(0.95)), max: round(sorted.at(-1)!) };
}

export function scopeInstances(sandbox: Sandbox, scope: Pick<Scope, "groups" | "since">): Instance[] {
  return [...sandbox.world.instances.values()].filter(
    (instance) =>
      instance.groupName !== null &&
      scope.groups.includes(instance.groupName) &&
      instance.launchedAt >= scope.since,
  );
}

export function hasVerifiedAgent(sandbox: Sandbox, instance: Instance): boolean {
  const agent = instance.agent;
  return (
    instance.milestones.verified !== undefined &&
    agent.running &&
    agent.version !== null &&
    compareVersions(agent.version, sandbox.world.codeDeploy.fixedInAgentVersion) >= 0
  );
}

export function measure(sandbox: Sandbox, scope: Scope): Figures {
  const { world } = sandbox;
  const instances = scopeInstances(sandbox, scope);
  const inScope = new Set(instances.map((instance) => instance.id));
  const actions = instances.flatMap((instance) => world.autoScaling.actionsOf(instance.id));
  const hooks = new Set([scope.hookName, ...(scope.otherHookNames ?? [])]);
  const ours = actions.filter((action) => hooks.has(action.hookName));
  const lost: { instanceId: string; why: string }[] = [];
  let inService = 0;
  let verified = 0;
  let abandoned = 0;
  for (const instance of instances) {
    const timedOut = world.autoScaling
      .actionsOf(instance.id)
      .some((action) => hooks.has(action.hookName) && action.completed?.by === "timeout");
    if (instance.milestones.abandoned !== undefined) abandoned++;
    if (instance.lifecycleState === "InService") {
      inService++;
      if (hasVerifiedAgent(sandbox, instance)) verified++;
      else
        lost.push({
          instanceId: instance.id,
          why: `in service without a verified agent (${instance.agent.version ?? "none"}, ${instance.agent.running ? "running" : "not running"})`,
        });
    } else if (!instance.terminated && instance.lifecycleState.startsWith("Pending")) {
      lost.push({
        instanceId: instance.id,
        why: `left in ${instance.lifecycleState}${heldBy(sandbox, instance)}`,
      });
    } else if (timedOut) {
      lost.push({
        instanceId: instance.id,
        why: "abandoned by a heartbeat timeout of the service's hook, with no decision",
      });
    }
  }
  const deployments = [...world.codeDeploy.deployments.values()].filter(
    (deployment) =>
      deployment.createTime >= scope.since &&
      scope.deploymentGroups.includes(`${deployment.applicationName}/${deployment.deploymentGroupName}`),
  );
  const launches = deployments.filter((deployment) => deployment.creator === "autoscaling");
  const redeploys = deployments.filter((deployment) => isRedeploy(deployment.description));
  return {
    instances: instances.length,
    inService,
    verified,
    abandoned,
    lifecycleTimeouts: actions.filter((action) => action.completed?.by === "timeout").length,
    lost: lost.length,
    lostInstances: lost,
    waitingActions: ours.filter((action) => !action.completed).length,
    duplicateInstalls: countDuplicates(sandbox, inScope),
    launchDeploymentsFailed: launches.filter((deployment) => deployment.status === "Failed").length,
    launchDeploymentsSucceeded: launches.filter((deployment) => deployment.status === "Succeeded").length,
    redeploys: redeploys.length,
    redeploysSucceeded: redeploys.filter((deployment) => deployment.status === "Succeeded").length,
    apiCalls: { ...sandbox.counters.calls },
    throttled: sandbox.counters.totalThrottled(),
    hookToCompleteSeconds: percentiles(
      ours
        .filter((action) => action.completed?.by === "api")
        .map((action) => (action.completed!.at - action.startedAt) / 1000),
    ),
    ...recoveryFigures({
      instances,
      serviceActions: (instanceId) =>
        world.autoScaling.actionsOf(instanceId).filter((action) => hooks.has(action.hookName)),
      endedVerified: (instance) =>
        instance.lifecycleState === "InService" && hasVerifiedAgent(sandbox, instance),
      trace: world.trace.entries,
      launchDeployments: launches,
      handledAt: launchHandling(sandbox),
      installRuns: (instanceId) => agentInstallRuns(sandbox, instanceId),
    }),
  };
}

/** What holds an instance left waiting: its open lifecycle actions, and its deployments and their states. */
function heldBy(sandbox: Sandbox, instance: Instance): string {
  const { world } = sandbox;
  const now = world.now();
  const actions = world.autoScaling.actionsOf(instance.id).map((action) => {
    const state = action.completed
      ? `${action.completed.result} by ${action.completed.by} at +${Math.round((action.completed.at - action.startedAt) / 1000)} s`
      : `open ${Math.round((now - action.startedAt) / 1000)} s, ${action.heartbeats} heartbeats`;
    return `${action.hookName} (${state})`;
  });
  const deployments = [...world.codeDeploy.deployments.values()]
    .filter((deployment) => deployment.targets.some((target) => target.instanceId === instance.id))
    .map((deployment) => `${deployment.id} by ${deployment.creator} ${deployment.status}`);
  return `; actions: ${actions.join(", ") || "none"}; deployments: ${deployments.join(", ") || "none"}`;
}

/** The CodeDeploy agent installs that ran on an instance (any document, any sender), request to end. */
function agentInstallRuns(sandbox: Sandbox, instanceId: string): { from: number; to: number }[] {
  const agent = (name: string | undefined) => name?.startsWith("AWSCodeDeployAgent") === true;
  return sandbox.world.ssm.invocations
    .filter(
      (invocation) =>
        invocation.instanceId === instanceId &&
        invocation.endedAt !== undefined &&
        (agent(invocation.packageName) || (invocation.steps ?? []).some((step) => agent(step.packageName))),
    )
    .map((invocation) => ({ from: invocation.requestedAt, to: invocation.endedAt! }));
}

/** Installs sent to an instance in scope while another install was in flight there. */
function countDuplicates(sandbox: Sandbox, inScope: Set<string>): number {
  return sandbox.world.trace.entries.filter(
    (entry) => entry.kind === "install.duplicate" && entry.instanceId && inScope.has(entry.instanceId),
  ).length;
}

/** When each instance was reported by an invocation of a launch function (any stage's), by instance. */
function launchHandling(sandbox: Sandbox): (instanceId: string) => readonly number[] {
  const byInstance = new Map<string, number[]>();
  for (const [name, fn] of sandbox.runtime.functions) {
    if (!name.endsWith("-launch")) continue;
    for (const invocation of fn.invocations) {
      const result = invocation.result as { instances?: { instanceId: string }[] } | undefined;
      for (const outcome of result?.instances ?? []) {
        byInstance.set(outcome.instanceId, [
          ...(byInstance.get(outcome.instanceId) ?? []),
          invocation.startedAt,
        ]);
      }
    }
  }
  return (instanceId) => byInstance.get(instanceId) ?? [];
}
