// Bringing the agent current on every instance a redeploy will reach, with the engine the launch path
// uses: the failed instances are upgraded (checked, reinstalled unless current, checked again), every
// other instance of the deployment is checked and installed only when its agent is missing, stopped
// or outdated. A redeploy goes to the whole group: an instance CodeDeploy skipped keeps its old agent
// and would fail the redeploy otherwise. Never on an instance a deployment covers (guard.ts), and an
// error SSM gives for some instances stays with those instances.
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { ensureAgents } from "../agent/engine.js";
import { findFirstObservedVersions } from "../agent/history.js";
import { type AgentResult, type AgentSettings, agentSettings, type EnsureMode } from "../agent/types.js";
import { clock } from "../common/clock.js";
import { chunk, mapLimit } from "../common/concurrency.js";
import { awsErrorName, errorMessage, isTransient } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import type { FailureConfig } from "../config.js";
import { MAX_INSTANCE_IDS_PER_COMMAND } from "../contract.js";
import { DeploymentGuard } from "./guard.js";

export interface UpgradedAgent {
  instanceId: string;
  /** Version before the upgrade; "none" when no agent was installed, "unknown" when it printed none. */
  from: string;
  to: string;
}

export interface NotUpgraded {
  instanceId: string;
  reason: string;
  /**
   * The instance is there (SSM answered for it, or a deployment runs on it) with an agent that is not
   * known to be current, so a redeploy would reach it. False when it never came Online with SSM or
   * cannot run commands: stopped or terminated, most likely.
   */
  reachable: boolean;
}

/** An instance whose agent was checked and found current: nothing was installed. */
export interface CurrentAgent {
  instanceId: string;
  version: string;
}

export interface UpgradeResult {
  upgraded: UpgradedAgent[];
  notUpgraded: NotUpgraded[];
  alreadyCurrent: CurrentAgent[];
}

export interface UpgradeJob {
  failed: DeploymentInfo;
  /** The failed targets: upgraded. */
  failedInstanceIds: readonly string[];
  /** Every other instance of the deployment (skipped, succeeded, ...): checked, installed if needed. */
  otherInstanceIds: readonly string[];
  /** Correlates the commands of every run of this job (the deployment id). */
  correlationId: string;
  /** AWS-time ms by which the invocation must have reported. */
  deadline: number;
}

/** The time budget ran out with agents still being upgraded; thrown so the retry resumes them. */
export class UpgradeUnfinishedError extends Error {
  override name = "UpgradeUnfinishedError";
}

/** Engines run side by side, each on up to one command's worth of instances. */
const ENGINES_IN_FLIGHT = 4;

export function emptyUpgrade(): UpgradeResult {
  return { upgraded: [], notUpgraded: [], alreadyCurrent: [] };
}

/** Brings the agent current on the instances no deployment covers, and says per instance what it did. */
export async function upgradeAgents(job: UpgradeJob, config: FailureConfig): Promise<UpgradeResult> {
  const result = emptyUpgrade();
  const failed = new Set(job.failedInstanceIds);
  const all = [...failed, ...job.otherInstanceIds.filter((id) => !failed.has(id))];
  if (all.length === 0) return result;
  const { guard, free, leftAlone } = await DeploymentGuard.start(
    job.failed.applicationName ?? "",
    job.failed.deploymentGroupName ?? "",
    all,
  );
  result.notUpgraded.push(...leftAlone.map((item) => ({ ...item, reachable: true })));
  if (free.length === 0) return result;

  const settings = agentSettings(config);
  const now = clock.now();
  const base = {
    since: job.failed.completeTime?.getTime(),
    // Long-lived instances: one that is not Online with SSM by now is stopped, terminated or cut off,
    // and must not hold up the others for long.
    registrationDeadline: Math.min(
      now + config.REGISTRATION_TIMEOUT_SECONDS * 1000,
      job.deadline - config.POLL_INTERVAL_MS,
    ),
    deadline: job.deadline,
    correlationId: job.correlationId,
    onTick: guard.onTick,
  };
  const batches = [
    ...chunk(
      free.filter((id) => failed.has(id)),
      MAX_INSTANCE_IDS_PER_COMMAND,
    ).map((ids) => ({ ids, mode: "upgrade" as const })),
    ...chunk(
      free.filter((id) => !failed.has(id)),
      MAX_INSTANCE_IDS_PER_COMMAND,
    ).map((ids) => ({ ids, mode: "verify-first" as const })),
  ];
  const refused = new Set<string>();
  const results = (
    await mapLimit(batches, ENGINES_IN_FLIGHT, (batch) =>
      ensureIsolated(batch.ids, batch.mode, base, settings, refused),
    )
  ).flat();
  const pending = results.filter((agent) => agent.status === "PENDING");
  if (pending.length > 0) {
    throw new UpgradeUnfinishedError(
      `The time budget ran out while upgrading the agent on ${pending.map((agent) => `${agent.instanceId} (${agent.reason})`).join(", ")}; the retry resumes it`,
    );
  }
  const firstSeen = await firstObservedVersions(results, job, config);
  for (const agent of results) {
    const earlier = firstSeen.get(agent.instanceId);
    // Found current because an earlier run of this job upgraded it (nothing to install this time).
    const upgradedEarlier = earlier !== undefined && earlier !== agent.agentVersion;
    const running = agent.status === "VERIFIED" || agent.status === "INSTALLED";
    if (running && (agent.installed || upgradedEarlier)) {
      result.upgraded.push({
        instanceId: agent.instanceId,
        from: earlier ?? agent.versionBefore ?? "unknown",
        // With verification switched off the new version is not known; the reinstall counts as a change.
        to: agent.agentVersion ?? (agent.status === "INSTALLED" ? "reinstalled" : "unknown"),
      });
    } else if (agent.status === "VERIFIED") {
      result.alreadyCurrent.push({ instanceId: agent.instanceId, version: agent.agentVersion ?? "unknown" });
    } else {
      const reason = agent.status === "STOPPED" ? guard.stoppedReason() : agent.reason;
      const reachable =
        agent.status !== "FAILED" || agent.platform !== undefined || refused.has(agent.instanceId);
      result.notUpgraded.push({ instanceId: agent.instanceId, reason, reachable });
    }
  }
  return result;
}

/**
 * Runs the engine on one batch. A non-transient AWS error (an instance outside the groups the role
 * may send commands to answers AccessDeniedException for the whole SendCommand) is kept with the
 * instances it concerns: the instance it names, or else the whole batch, is reported FAILED with it,
 * and the rest of the batch is run again without them. Throttling is the engine's to retry; a bug
 * is thrown.
 */
async function ensureIsolated(
  ids: readonly string[],
  mode: EnsureMode,
  base: Omit<Parameters<typeof ensureAgents>[0], "instanceIds" | "mode">,
  settings: AgentSettings,
  refused: Set<string>,
): Promise<AgentResult[]> {
  const results: AgentResult[] = [];
  let remaining = [...ids];
  while (remaining.length > 0) {
    try {
      results.push(...(await ensureAgents({ ...base, instanceIds: remaining, mode }, settings)));
      return results;
    } catch (error) {
      if (!isServiceError(error) || isTransient(error)) throw error;
      const message = errorMessage(error);
      const named = remaining.find((id) => message.includes(id));
      const refusedIds = named ? [named] : remaining;
      logger.warn("SSM refused the agent commands for some instances; the others go on", {
        instanceIds: refusedIds,
        errorName: awsErrorName(error),
        error: message,
      });
      results.push(...refusedIds.map((instanceId) => refusedResult(instanceId, error)));
      for (const id of refusedIds) refused.add(id);
      remaining = remaining.filter((id) => !refusedIds.includes(id));
    }
  }
  return results;
}

/** An error an AWS service answered (SDK v3 service exceptions carry `$metadata`). */
function isServiceError(error: unknown): boolean {
  return typeof error === "object" && error !== null && "$metadata" in error;
}

function refusedResult(instanceId: string, error: unknown): AgentResult {
  return {
    instanceId,
    status: "FAILED",
    reason: `SSM refused the agent commands for it (${awsErrorName(error)}: ${errorMessage(error)})`,
    installCommandIds: [],
    verifyCommandIds: [],
    installed: false,
  };
}

/** The agents an upgrade changed (version, or a missing/stopped agent now running). */
export function changedAgents(result: UpgradeResult): UpgradedAgent[] {
  return result.upgraded.filter((agent) => agent.from !== agent.to);
}

/** "agent upgraded on i-1 (1.6.0 -> 1.8.1); already current on i-3; not upgraded: i-2 (...)" */
export function summarizeUpgrade(result: UpgradeResult): string {
  const parts: string[] = [];
  if (result.upgraded.length > 0) {
    parts.push(
      `agent upgraded on ${result.upgraded.map((agent) => `${agent.instanceId} (${agent.from} -> ${agent.to})`).join(", ")}`,
    );
  }
  if (result.alreadyCurrent.length > 0) {
    parts.push(`already current on ${result.alreadyCurrent.map((agent) => agent.instanceId).join(", ")}`);
  }
  if (result.notUpgraded.length > 0) {
    parts.push(
      `not upgraded: ${result.notUpgraded.map((item) => `${item.instanceId} (${item.reason})`).join("; ")}`,
    );
  }
  return parts.length > 0 ? parts.join("; ") : "no agent needed upgrading";
}

/**
 * When this invocation found an agent already at its new version, an earlier run of this same job
 * may have upgraded it (a retry after another deployment blocked the redeploy): use the version
 * that earlier run saw first.
 */
async function firstObservedVersions(
  results: AgentResult[],
  job: UpgradeJob,
  config: FailureConfig,
): Promise<Map<string, string>> {
  const unchanged = results.filter(
    (agent) =>
      (agent.status === "VERIFIED" || agent.installed) &&
      agent.versionBefore !== undefined &&
      agent.versionBefore === agent.agentVersion,
  );
  const since = job.failed.completeTime?.getTime();
  if (unchanged.length === 0 || since === undefined) return new Map();
  try {
    return await findFirstObservedVersions(
      agentSettings(config).checkDocument,
      unchanged.map((agent) => agent.instanceId),
      since,
      `agentfix verify ${job.correlationId}`,
    );
  } catch (error) {
    // The decision stands on this invocation's own observations; the history only refines it.
    logger.warn("Could not read earlier agent verifications", { error: errorMessage(error) });
    return new Map();
  }
}
