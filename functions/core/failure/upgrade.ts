// Bringing the agent current on every instance a redeploy will reach, with the agent work the launch
// path takes (agent/work.ts), run until done: each instance's agent is checked by the install
// document and reinstalled only where it is missing, stopped or older than expected. A redeploy goes
// to the whole group: an instance CodeDeploy skipped keeps its old agent and would fail the redeploy
// otherwise. Never on an instance a deployment covers (guard.ts). A retry of this job first looks for
// the install an earlier run sent since the failure, and follows it: its before and after versions
// keep "the upgrade changed the agent" true across retries.
import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { type AgentJob, newJob } from "../agent/job.js";
import { expectedVersion } from "../agent/settings.js";
import { runWork } from "../agent/work.js";
import { clock } from "../common/clock.js";
import type { FailureConfig } from "../config.js";
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
  /** Left alone because a deployment runs on it, or started in the group meanwhile: worth waiting for. */
  busy?: boolean;
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
  result.notUpgraded.push(...leftAlone.map((item) => ({ ...item, reachable: true, busy: true })));
  if (free.length === 0) return result;

  const now = clock.now();
  const since = job.failed.completeTime?.getTime() ?? now;
  // Each job starts as an install that may have gone out already (an earlier run of this job): it is
  // looked up on the instance first, and followed, or sent.
  const jobs: AgentJob[] = free.map((instanceId) => ({
    ...newJob(instanceId, "sending"),
    sendingSince: since,
    heldUntil: 0,
  }));
  /**
   * A deployment that started in the group meanwhile stops the work on every instance not finished:
   * a job is `done` only so (the agent work itself ends in `finishing`).
   */
  const stop = async (pending: AgentJob[]): Promise<AgentJob[]> => {
    if (!(await guard.startedMeanwhile())) return [];
    for (const candidate of pending) candidate.phase = "done";
    return pending;
  };
  const stopped = (agent: AgentJob) => agent.phase === "done";
  // Long-lived instances: one that is not Online with SSM by now is stopped, terminated or cut off,
  // and must not hold up the others for long.
  const registrationDeadline = Math.min(
    now + config.REGISTRATION_TIMEOUT_SECONDS * 1000,
    job.deadline - config.POLL_INTERVAL_MS,
  );
  await runWork(
    jobs,
    {
      config,
      expected: await expectedVersion(config),
      cadence: {
        registrationPollMs: config.POLL_INTERVAL_MS,
        overdueMs: config.POLL_INTERVAL_MS,
        followMs: config.POLL_INTERVAL_MS,
      },
      now: () => clock.now(),
      heldUntil: job.deadline,
      correlationId: job.correlationId,
      registration: () => ({ since: now, deadline: registrationDeadline }),
      // The group is looked at again right before installs go out, as before each round.
      stillWanted: async (ready) => {
        await stop(ready);
        return ready.filter((candidate) => !stopped(candidate));
      },
    },
    {
      deadline: job.deadline,
      beforeRound: stop,
    },
  );
  const unfinished = jobs.filter((agent) => agent.phase !== "finishing" && !stopped(agent));
  if (unfinished.length > 0) {
    throw new UpgradeUnfinishedError(
      `The time budget ran out while upgrading the agent on ${unfinished.map((agent) => `${agent.instanceId} (${agent.reason})`).join(", ")}; the retry resumes it`,
    );
  }
  for (const agent of jobs) {
    if (stopped(agent)) {
      result.notUpgraded.push({
        instanceId: agent.instanceId,
        reason: guard.stoppedReason(),
        reachable: true,
        busy: true,
      });
    } else if (agent.ended?.ok && agent.installed) {
      result.upgraded.push({
        instanceId: agent.instanceId,
        from: agent.versionBefore ?? "unknown",
        to: agent.agentVersion ?? "unknown",
      });
    } else if (agent.ended?.ok) {
      result.alreadyCurrent.push({ instanceId: agent.instanceId, version: agent.agentVersion ?? "unknown" });
    } else {
      // Reachable: SSM answered for it (it registered, or ran the install), so a redeploy would reach it.
      const reachable = agent.platform !== undefined || agent.commandIds.length > 0;
      result.notUpgraded.push({ instanceId: agent.instanceId, reason: agent.reason, reachable });
    }
  }
  return result;
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
