import { isAcceptable } from "../../functions/core/agent/verified.js";
import type { LaunchOutcome } from "../../functions/core/launch/types.js";
import type { Sandbox } from "../sandbox.js";
import { AGENT_NOT_RECEIVING_MESSAGE, AGENT_RESTART_MESSAGE } from "../world/codedeploy/diagnostics.js";
import type { Deployment } from "../world/codedeploy/records.js";
import {
  type AgentRestart,
  type HarmFigures,
  type HarmRecords,
  harmFigures,
  type StageScope,
} from "./harm-watch.js";

// The behaviours the do-no-harm rules ask for, shown beside the harm figure: each stage keeps to its
// own instances, CodeDeploy's launch deployment gets no install after our hook let the instance go,
// an instance leaving a warm pool is only checked, other teams' Distributor commands are not followed,
// and an AMI that bakes an outdated agent is reported. Read from the world, the trace the harm watch
// kept, and the functions' own reports.

export interface CareFigures {
  /** Instances that commands of two stages reached. */
  instancesTouchedByTwoStages: number;
  /** Instances on which Distributor installed two different agent versions. */
  instancesGivenTwoAgentVersions: number;
  /** Installs a stage sent to a launching instance after its own hook had let it go. */
  installsAfterOwnHook: number;
  /**
   * Instances leaving a warm pool: the checks sent to them, and the installs that ran there (only
   * checks are due). An install document whose first step found the agent current and ended it
   * early is a check: its install step never ran.
   */
  /**
   * Launches out of a warm pool: their sends, the checks that installed nothing, the installs, and the
   * needless installs among them (onto an agent that already ran at the expected version or newer).
   */
  leavingWarmPool: { instances: number; checks: number; installs: number; needlessInstalls: number };
  /** Other teams' Distributor commands that a stage's launch outcomes count as its installs. */
  otherTeamsInstallsFollowed: number;
  /**
   * Instances a sweep found waiting after the stage's own hook had let them go (CodeDeploy's hook held
   * them): enqueued for the launch function to leave alone, or left alone by the sweep itself.
   */
  sweepFoundHeldByCodeDeploy: number;
  /** Sweep and replay requests the launch function left alone: its own action was no longer open. */
  leftAloneForAnotherHook: number;
  /** Launch outcomes that name an AMI baking an outdated agent, by AMI. */
  bakedAgentReports: Record<string, number>;
  /** Every agent restart, by who caused it. */
  agentRestartsBy: Record<string, number>;
}

/** Whether a command sent to an instance installed the agent there (its install step ran, or runs). */
function installRan(
  sandbox: Sandbox,
  send: { commandId: string; instanceId: string; documentName: string },
  installDocuments: ReadonlySet<string>,
): boolean {
  if (!installDocuments.has(send.documentName)) return false;
  const invocation = sandbox.world.ssm.invocations.find(
    (candidate) => candidate.commandId === send.commandId && candidate.instanceId === send.instanceId,
  );
  const step = invocation?.steps?.find((candidate) => candidate.kind === "install");
  return step === undefined || (step.status !== "Skipped" && step.status !== "Pending");
}

/** The version a command of the stage's install document expected (its `expectedVersion` parameter). */
function expectedOf(sandbox: Sandbox, commandId: string): string {
  return sandbox.world.ssm.commands.get(commandId)?.parameters?.expectedVersion?.[0] ?? "";
}

function invocationResults<T>(sandbox: Sandbox, functionName: string): { startedAt: number; result: T }[] {
  const fn = sandbox.runtime.functions.get(functionName);
  return (fn?.invocations ?? [])
    .filter((invocation) => invocation.result !== undefined)
    .map((invocation) => ({ startedAt: invocation.startedAt, result: invocation.result as T }));
}

/** Every per-instance outcome the stage's launch function reported. */
export function launchOutcomes(sandbox: Sandbox, stage: StageScope): LaunchOutcome[] {
  return invocationResults<{ instances?: LaunchOutcome[] }>(sandbox, stage.launchFunction).flatMap(
    ({ result }) => result.instances ?? [],
  );
}

const tally = (values: string[]) =>
  values.reduce<Record<string, number>>((counts, value) => {
    counts[value] = (counts[value] ?? 0) + 1;
    return counts;
  }, {});

export function careFigures(
  sandbox: Sandbox,
  records: HarmRecords,
  stages: readonly StageScope[],
): CareFigures {
  const { world } = sandbox;
  const documents = new Map<string, string>();
  for (const stage of stages) {
    documents.set(stage.installDocument, stage.stage);
  }
  const stagesByInstance = new Map<string, Set<string>>();
  for (const send of records.sends) {
    const stage = documents.get(send.documentName);
    if (!stage) continue;
    stagesByInstance.set(send.instanceId, (stagesByInstance.get(send.instanceId) ?? new Set()).add(stage));
  }
  const versions = new Map<string, Set<string>>();
  for (const entry of world.trace.entries) {
    if (entry.kind !== "install.succeeded" || !entry.instanceId) continue;
    versions.set(
      entry.instanceId,
      (versions.get(entry.instanceId) ?? new Set()).add(String(entry.data?.version)),
    );
  }
  const installs = new Set(stages.map((stage) => stage.installDocument));
  const afterOwnHook = records.sends.filter((send) => {
    const stage = stages.find((candidate) => candidate.installDocument === send.documentName);
    return (
      stage !== undefined &&
      send.lifecycleState.startsWith("Pending") &&
      send.hooksOpen[stage.hookName] === false
    );
  });
  const leaving = records.sends.filter((send) => send.leavingWarmPool && documents.has(send.documentName));
  const outcomes = stages.flatMap((stage) =>
    launchOutcomes(sandbox, stage).map((outcome) => ({ stage, outcome })),
  );
  const followed = outcomes.flatMap(({ stage, outcome }) =>
    (outcome.installCommandIds ?? []).filter(
      (commandId) => world.ssm.commands.get(commandId)?.documentName !== stage.installDocument,
    ),
  );
  let sweepFound = 0;
  for (const stage of stages) {
    for (const { startedAt, result } of invocationResults<{
      stale?: { instanceId: string }[];
      inHand?: string[];
    }>(sandbox, stage.sweepFunction)) {
      const seen = [...(result.stale ?? []).map((stale) => stale.instanceId), ...(result.inHand ?? [])];
      for (const instanceId of seen) {
        const ours = world.autoScaling
          .actionsOf(instanceId)
          .filter((action) => action.hookName === stage.hookName && action.startedAt <= startedAt)
          .at(-1);
        if (ours?.completed && ours.completed.at < startedAt) sweepFound++;
      }
    }
  }
  return {
    instancesTouchedByTwoStages: [...stagesByInstance.values()].filter((set) => set.size > 1).length,
    instancesGivenTwoAgentVersions: [...versions.values()].filter((set) => set.size > 1).length,
    installsAfterOwnHook: afterOwnHook.length,
    leavingWarmPool: {
      instances: new Set(leaving.map((send) => send.instanceId)).size,
      checks: leaving.filter((send) => !installRan(sandbox, send, installs)).length,
      installs: leaving.filter((send) => installRan(sandbox, send, installs)).length,
      needlessInstalls: leaving.filter(
        (send) =>
          installRan(sandbox, send, installs) &&
          send.agent.running &&
          isAcceptable(send.agent.version ?? "", expectedOf(sandbox, send.commandId)),
      ).length,
    },
    otherTeamsInstallsFollowed: followed.length,
    sweepFoundHeldByCodeDeploy: sweepFound,
    leftAloneForAnotherHook: outcomes.filter(({ outcome }) =>
      /our lifecycle action is not open/.test(outcome.reason),
    ).length,
    bakedAgentReports: tally(
      outcomes.flatMap(({ outcome }) =>
        outcome.bakedAgent
          ? [`${outcome.bakedAgent.imageId ?? "?"} (agent ${outcome.bakedAgent.agentVersion})`]
          : [],
      ),
    ),
    agentRestartsBy: tally(records.restarts.map((restart) => restart.by)),
  };
}

/** Why each failed launch deployment failed, and whether the service caused it. */
export interface LaunchFailures {
  byCause: Record<string, number>;
  causedByService: number;
}

/**
 * Failed launch deployments by cause: no agent picked an event up (absent, or stopped), the agent was
 * outdated (the start script fails on it), the agent restarted under the deployment (and by whose
 * install), or the instance went away (abandoned by a hook, terminated). A failure is the service's
 * when its own install restarted the agent (`own.installs` says whose installs are its own: by
 * default a stage's install document), or its hook abandoned an instance whose agent was current.
 */
export function launchFailures(
  sandbox: Sandbox,
  deployments: readonly Deployment[],
  records: HarmRecords,
  stages: readonly StageScope[],
  harm: HarmFigures = harmFigures(sandbox, records, stages),
  own: { installs: (restart: AgentRestart) => boolean; name: string } = {
    installs: (restart) => restart.stage !== undefined,
    name: "the service",
  },
): LaunchFailures {
  const causes: string[] = [];
  let causedByService = 0;
  const harmfulAbandons = new Set(
    harm.items.filter((item) => item.kind === "abandoned-would-succeed").map((item) => item.instanceId),
  );
  for (const deployment of deployments.filter((candidate) => candidate.status === "Failed")) {
    const target = deployment.targets[0];
    const failed = target?.lifecycleEvents.find((event) => event.status === "Failed");
    const message = failed?.diagnostics?.message ?? "";
    const instance = target ? sandbox.world.instances.get(target.instanceId) : undefined;
    let cause: string;
    let byService = false;
    if (!failed) {
      const reason = instance?.abandonReason;
      cause = reason ? `instance gone: ${reason}` : "instance gone: terminated";
      byService = instance !== undefined && harmfulAbandons.has(instance.id);
    } else if (message.startsWith(AGENT_RESTART_MESSAGE)) {
      const restart = records.restarts.find(
        (candidate) =>
          candidate.instanceId === target?.instanceId &&
          candidate.deployments.some((running) => running.id === deployment.id),
      );
      cause = `agent restarted during the deployment by ${restart?.by ?? "an unknown install"}`;
      byService = restart !== undefined && own.installs(restart);
    } else if (message.startsWith(AGENT_NOT_RECEIVING_MESSAGE)) {
      cause = "agent absent or stopped: no agent picked up a lifecycle event";
    } else if (
      failed.diagnostics?.errorCode === "ScriptFailed" &&
      failed.lifecycleEventName === "ApplicationStart"
    ) {
      cause = "agent outdated: the start script fails on it";
    } else {
      cause = `${failed.lifecycleEventName} ${failed.diagnostics?.errorCode ?? ""}: ${message.slice(0, 60)}`;
    }
    causes.push(byService ? `${cause} (caused by ${own.name})` : cause);
    if (byService) causedByService++;
  }
  return { byCause: tally(causes), causedByService };
}
