import { inScope } from "../../functions/core/config.js";
import { AGENT_PACKAGES, type AgentPackage, DISTRIBUTOR_DOCUMENT } from "../../functions/core/contract.js";
import { parseMarker } from "../../functions/core/failure/redeploy.js";
import type { StageConfig } from "../../stacks/config.js";
import { describeService, type ServiceWiring } from "../../stacks/wiring.js";
import type { Sandbox } from "../sandbox.js";
import type { ServiceDeployment } from "../service.js";
import { compareVersions } from "../world/random.js";
import { packageBeingInstalled } from "../world/ssm/records.js";
import type { TraceEntry } from "../world/trace.js";

// What "first, do no harm" (docs/design.md) forbids, watched while a story runs: the world's own
// events and trace say what happened at the moment it happened (an agent restarting under a
// deployment, the agent an instance had when a hook abandoned it, the targets a redeploy reaches),
// and the stages' scopes say afterwards whose doing it was.

/** What one deployed stage may touch, from its configuration. */
export interface StageScope {
  stage: string;
  /** Auto Scaling groups in scope; empty: every group. */
  groups: readonly string[];
  /** application/deployment-group pairs in scope; empty: none; ["*"]: every one. */
  deploymentGroups: readonly string[];
  hookName: string;
  installDocument: string;
  dryRun: boolean;
  maxRedeploys: number;
  launchFunction: string;
  sweepFunction: string;
}

export function stageScope(service: ServiceDeployment): StageScope {
  return stageScopeOf(service.config, service.wiring);
}

/** The scope of a stage configuration, deployed or not (an alternative run under its hook). */
export function stageScopeOf(
  config: StageConfig,
  wiring: ServiceWiring = describeService(config),
): StageScope {
  return {
    stage: config.stage,
    groups: config.groups,
    deploymentGroups: config.deploymentGroups,
    hookName: config.hook.name,
    installDocument: wiring.documents.install.name,
    dryRun: config.dryRun,
    maxRedeploys: config.failure.maxRedeploys,
    launchFunction: wiring.functions.launch?.name ?? "",
    sweepFunction: wiring.functions.sweep?.name ?? "",
  };
}

export type HarmKind =
  | "abandoned-would-succeed"
  | "restart-during-deployment"
  | "forbidden-redeploy"
  | "install-out-of-scope";

export interface HarmItem {
  kind: HarmKind;
  detail: string;
  instanceId?: string;
  deploymentId?: string;
}

/** An agent restart (an install replacing a running agent), with who caused it and what it ran under. */
export interface AgentRestart {
  instanceId: string;
  at: number;
  /** Who installed: a stage's install document, a State Manager association, another command. */
  by: string;
  /** The stage whose document restarted it, if one did. */
  stage?: string;
  /** Deployments with this instance's target in progress at that moment. */
  deployments: { id: string; creator: string }[];
  /**
   * The lifecycle event the agent was running (its ongoing-deployment file), if any: a restart then
   * fails the event; between two events the deployment only waits for the new agent.
   */
  duringEvent?: string;
}

interface AbandonRecord {
  instanceId: string;
  hookName: string;
  by: string;
  at: number;
  agent: { running: boolean; version: string | null };
}

interface SendRecord {
  commandId: string;
  documentName: string;
  instanceId: string;
  at: number;
  groupName: string | null;
  lifecycleState: string;
  /** Per hook, whether the instance's latest action of that hook was still open. */
  hooksOpen: Record<string, boolean>;
  leavingWarmPool: boolean;
  /** The agent as it was when the command went out: running, at this version (null: none). */
  agent: { running: boolean; version: string | null };
}

interface RedeployRecord {
  deploymentId: string;
  group: string;
  description: string;
  /** The agents of the instances the redeploy reaches, when it was created. */
  targets: { instanceId: string; running: boolean; version: string | null }[];
}

/** Everything watched, raw; `harmFigures` and `careFigures` judge it against the stages. */
export interface HarmRecords {
  fixedInAgentVersion: string;
  abandons: AbandonRecord[];
  restarts: AgentRestart[];
  sends: SendRecord[];
  redeploys: RedeployRecord[];
}

export interface HarmWatch {
  records: HarmRecords;
  stop(): void;
}

/** Starts watching the world for what the do-no-harm rules forbid; call before the story starts. */
export function watchHarm(sandbox: Sandbox): HarmWatch {
  const { world } = sandbox;
  const records: HarmRecords = {
    fixedInAgentVersion: world.codeDeploy.fixedInAgentVersion,
    abandons: [],
    restarts: [],
    sends: [],
    redeploys: [],
  };
  const stopRestarts = world.events.on("agent.stopped", ({ instance, reason }) => {
    if (reason !== "restart") return;
    const installing = world.ssm
      .invocationsOf(instance.id)
      .find((invocation) => AGENT_PACKAGES.includes(packageBeingInstalled(invocation) as AgentPackage));
    const deployments = world.codeDeploy
      .active()
      .filter((deployment) =>
        deployment.targets.some(
          (target) => target.instanceId === instance.id && target.status === "InProgress",
        ),
      )
      .map((deployment) => ({ id: deployment.id, creator: deployment.creator }));
    const stage = /^agentfix-(.+)-install-codedeploy-agent$/.exec(installing?.documentName ?? "")?.[1];
    const running =
      deployments.length > 0 ? runningEvent(instance.id, instance.agent.ongoingDeployment) : undefined;
    records.restarts.push({
      instanceId: instance.id,
      at: world.now(),
      by: installerOf(installing),
      ...(stage ? { stage } : {}),
      deployments,
      ...(running ? { duringEvent: running } : {}),
    });
  });
  const stopTrace = world.trace.subscribe((entry) => {
    if (entry.kind === "hook.completed") recordAbandon(entry);
    else if (entry.kind === "ssm.command") recordSend(entry);
    else if (entry.kind === "deployment.created" && entry.deploymentId) recordRedeploy(entry);
  });

  /** The event the agent's ongoing-deployment file names, as `<deployment> <event>`. */
  function runningEvent(
    instanceId: string,
    ongoing: { deploymentId: string } | undefined,
  ): string | undefined {
    if (!ongoing) return undefined;
    const target = world.codeDeploy.deployments
      .get(ongoing.deploymentId)
      ?.targets.find((candidate) => candidate.instanceId === instanceId);
    const event = target?.lifecycleEvents.find((candidate) => candidate.status === "InProgress");
    return `${ongoing.deploymentId} ${event?.lifecycleEventName ?? "(an event)"}`;
  }

  function recordAbandon(entry: TraceEntry): void {
    const data = entry.data ?? {};
    if (data.result !== "ABANDON" || !entry.instanceId) return;
    const instance = world.instance(entry.instanceId);
    records.abandons.push({
      instanceId: instance.id,
      hookName: String(data.hookName),
      by: String(data.by),
      at: entry.at,
      agent: { running: instance.agent.running, version: instance.agent.version },
    });
  }

  function recordSend(entry: TraceEntry): void {
    const data = entry.data ?? {};
    const documentName = String(data.documentName);
    const instanceIds = Array.isArray(data.instanceIds) ? data.instanceIds.map(String) : [];
    for (const instanceId of instanceIds) {
      const instance = world.instance(instanceId);
      const hooksOpen: Record<string, boolean> = {};
      for (const action of world.autoScaling.actionsOf(instanceId))
        hooksOpen[action.hookName] = !action.completed;
      const latest = world.autoScaling.actionsOf(instanceId).at(-1);
      records.sends.push({
        commandId: String(data.commandId),
        documentName,
        instanceId,
        at: entry.at,
        groupName: instance.groupName,
        lifecycleState: instance.lifecycleState,
        hooksOpen,
        leavingWarmPool: latest?.origin === "WarmPool" && instance.lifecycleState.startsWith("Pending"),
        agent: { running: instance.agent.running, version: instance.agent.version },
      });
    }
  }

  function recordRedeploy(entry: TraceEntry): void {
    const description = String(entry.data?.description ?? "");
    if (!parseMarker(description)) return;
    const group = String(entry.data?.group ?? "");
    const asgs = world.codeDeploy.groups.get(group)?.autoScalingGroups ?? [];
    // CodeDeploy reaches the group's InService instances (deployments.ts).
    const targets = asgs
      .flatMap((name) => [...world.instances.values()].filter((instance) => instance.groupName === name))
      .filter((instance) => instance.lifecycleState === "InService")
      .map((instance) => ({
        instanceId: instance.id,
        running: instance.agent.running,
        version: instance.agent.version,
      }));
    records.redeploys.push({ deploymentId: entry.deploymentId ?? "", group, description, targets });
  }

  return {
    records,
    stop() {
      stopRestarts();
      stopTrace();
    },
  };
}

/** Who restarted an agent, when it was not a stage's install document (named by its own name). */
export const INSTALLERS = {
  association: "a State Manager association",
  distributorCommand: `an ${DISTRIBUTOR_DOCUMENT} command`,
  unknown: "an unknown install",
} as const;

function installerOf(invocation: { documentName: string; source: string } | undefined): string {
  if (!invocation) return INSTALLERS.unknown;
  if (invocation.source === "association") return INSTALLERS.association;
  if (invocation.documentName === DISTRIBUTOR_DOCUMENT) return INSTALLERS.distributorCommand;
  return invocation.documentName;
}

export interface HarmFigures {
  /** The sum of the four below; anything but 0 is harm done. */
  harm: number;
  /** Launches a stage's hook abandoned (or its dry run did) while the agent already ran current. */
  abandonedThatWouldHaveSucceeded: number;
  /** Agents restarted while a deployment (a launch deployment included) ran on their instance. */
  agentRestartsDuringDeployments: number;
  /** Redeploys the rules forbid: of launch deployments or rollbacks, past the cap, out of scope, onto outdated agents. */
  forbiddenRedeploys: number;
  /** Installs a stage sent to an instance outside its groups (and its deployment groups' groups). */
  installsOutOfScope: number;
  items: HarmItem[];
}

function isCurrent(agent: { running: boolean; version: string | null }, fixed: string): boolean {
  return agent.running && agent.version !== null && compareVersions(agent.version, fixed) >= 0;
}

/** The groups whose instances a stage may install on: its groups, and those of its deployment groups. */
function groupsInScope(sandbox: Sandbox, stage: StageScope): Set<string> | undefined {
  if (stage.groups.length === 0) return undefined;
  const groups = new Set(stage.groups);
  for (const pair of stage.deploymentGroups) {
    for (const name of sandbox.world.codeDeploy.groups.get(pair)?.autoScalingGroups ?? []) groups.add(name);
  }
  return groups;
}

export function harmFigures(
  sandbox: Sandbox,
  records: HarmRecords,
  stages: readonly StageScope[],
): HarmFigures {
  const items: HarmItem[] = [];
  const fixed = records.fixedInAgentVersion;
  for (const abandon of records.abandons) {
    const stage = stages.find((candidate) => candidate.hookName === abandon.hookName);
    if (!stage || !(stage.dryRun || isCurrent(abandon.agent, fixed))) continue;
    items.push({
      kind: "abandoned-would-succeed",
      instanceId: abandon.instanceId,
      detail: `${abandon.instanceId} abandoned by ${abandon.hookName} (${abandon.by})${stage.dryRun ? " in a dry run" : ""} with agent ${abandon.agent.version} running`,
    });
  }
  for (const restart of records.restarts.filter((candidate) => candidate.deployments.length > 0)) {
    items.push({
      kind: "restart-during-deployment",
      instanceId: restart.instanceId,
      deploymentId: restart.deployments[0]?.id,
      detail: `${restart.instanceId} agent restarted by ${restart.by} while ${restart.deployments.map((d) => `${d.id} (${d.creator})`).join(", ")} ran there, ${restart.duringEvent ? `during ${restart.duringEvent}` : "between lifecycle events"}`,
    });
  }
  items.push(...forbiddenRedeploys(sandbox, records, stages));
  for (const stage of stages) {
    const scope = groupsInScope(sandbox, stage);
    if (!scope) continue;
    for (const send of records.sends) {
      if (send.documentName !== stage.installDocument) continue;
      if (send.groupName !== null && scope.has(send.groupName)) continue;
      items.push({
        kind: "install-out-of-scope",
        instanceId: send.instanceId,
        detail: `${stage.stage} sent ${send.documentName} to ${send.instanceId} of ${send.groupName ?? "no group"}, outside its groups`,
      });
    }
  }
  const count = (kind: HarmKind) => items.filter((item) => item.kind === kind).length;
  return {
    harm: items.length,
    abandonedThatWouldHaveSucceeded: count("abandoned-would-succeed"),
    agentRestartsDuringDeployments: count("restart-during-deployment"),
    forbiddenRedeploys: count("forbidden-redeploy"),
    installsOutOfScope: count("install-out-of-scope"),
    items,
  };
}

function forbiddenRedeploys(
  sandbox: Sandbox,
  records: HarmRecords,
  stages: readonly StageScope[],
): HarmItem[] {
  const { world } = sandbox;
  const items: HarmItem[] = [];
  const perOriginal = new Map<string, number>();
  for (const redeploy of records.redeploys) {
    const marker = parseMarker(redeploy.description);
    const originalId = marker?.originalDeploymentId ?? "";
    const original = world.codeDeploy.deployments.get(originalId);
    // The marker names the stage that redeployed; a marker without one is taken as the in-scope stage's.
    const stage = marker?.stage
      ? stages.find((candidate) => candidate.stage === marker.stage)
      : stages.find((candidate) => inScope(candidate.deploymentGroups, redeploy.group));
    const attempt = (perOriginal.get(originalId) ?? 0) + 1;
    perOriginal.set(originalId, attempt);
    const outdated = redeploy.targets.filter((target) => !isCurrent(target, records.fixedInAgentVersion));
    const why = !stage
      ? marker?.stage
        ? `its marker names stage ${marker.stage}, which is not deployed here`
        : `its deployment group ${redeploy.group} is in no stage's scope`
      : !inScope(stage.deploymentGroups, redeploy.group)
        ? `stage ${stage.stage} redeployed into ${redeploy.group}, outside its scope`
        : stage.dryRun
          ? `stage ${stage.stage} runs dry`
          : original?.creator === "autoscaling"
            ? `${originalId} is a launch deployment`
            : original?.creator === "codeDeployRollback"
              ? `${originalId} is a rollback`
              : attempt > stage.maxRedeploys
                ? `it is attempt ${attempt} of ${originalId}, past the cap of ${stage.maxRedeploys}`
                : outdated.length > 0
                  ? `it reaches ${outdated.map((target) => `${target.instanceId} (agent ${target.version ?? "none"}${target.running ? "" : ", stopped"})`).join(", ")}`
                  : undefined;
    if (why)
      items.push({
        kind: "forbidden-redeploy",
        deploymentId: redeploy.deploymentId,
        detail: `${redeploy.deploymentId} redeploys although ${why}`,
      });
  }
  return items;
}

/** The harm figure's parts in one line. */
export function describeHarm(figures: HarmFigures): string {
  return `harm ${figures.harm}: abandoned that would have succeeded ${figures.abandonedThatWouldHaveSucceeded}, agent restarts during a deployment ${figures.agentRestartsDuringDeployments}, forbidden redeploys ${figures.forbiddenRedeploys}, installs out of scope ${figures.installsOutOfScope}${
    figures.items.length > 0
      ? ` (${figures.items
          .slice(0, 3)
          .map((item) => item.detail)
          .join("; ")})`
      : ""
  }`;
}
