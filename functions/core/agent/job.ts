// One model of an instance's agent work: one set of phases and pure transitions (drawn in
// docs/launch-state-machine.md). Every input (a launch event, SSM's command event, an overdue message,
// a sweep, a replay, the failure path's upgrade) becomes observations these apply; none calls AWS.
import type { Fault, Judgement } from "./verdicts.js";

/**
 * `registering` (until Online with SSM); `ready` (an install is to be sent, once it is still wanted);
 * `sending` (until `heldUntil` its invocation may still send it, then it is looked up on the instance
 * and followed, or sent again); `installing` (`commandId` runs); `waiting` (until `retryAt`: a
 * deployment or another install runs there, or CodeDeploy is to be asked about a restart,
 * `restartCheck`); `finishing` (`ended`; a launch still completes its lifecycle action); `done`.
 */
export type Phase = "registering" | "ready" | "sending" | "installing" | "waiting" | "finishing" | "done";

/** How the agent work ended, when it has. */
export interface JobEnd {
  ok: boolean;
  /** Failures only: the instance's own, or the service's (SSM, Distributor, us). */
  fault?: Fault;
  reason: string;
  /** When the install that ended the work finished, as SSM reports it (AWS ms). */
  at?: number;
}

export interface AgentJob {
  instanceId: string;
  phase: Phase;
  /** Installs sent (or followed) so far; an install held back by a busy agent costs none. */
  attempts: number;
  commandIds: string[];
  commandId?: string;
  /** AWS-time ms the install in `commandId` was sent. */
  sentAt?: number;
  /** `sending` and `finishing`: the invocation that took the step may act until then. */
  heldUntil?: number;
  sendingSince?: number;
  retryAt?: number;
  /** CodeDeploy is to be asked before an older running agent is restarted. */
  restartCheck?: boolean;
  /** AWS-time ms since when the restart has waited for CodeDeploy. */
  restartCheckSince?: number;
  /** CodeDeploy said no deployment is in flight there: the install may restart the agent. */
  restartAllowed?: boolean;
  platform?: string;
  /** The version the agent had to run at, or newer ("" accepted any). */
  expectedVersion?: string;
  agentVersion?: string;
  /** The agent before the install: "none", "unknown" or its version. */
  versionBefore?: string;
  /** The agent that already ran before the install (baked into the AMI and started at boot). */
  runningBefore?: string;
  /** The work sent (or followed) an install that succeeded. */
  installed?: boolean;
  ended?: JobEnd;
  reason: string;
}

export function newJob(instanceId: string, phase: Phase = "registering"): AgentJob {
  return {
    instanceId,
    phase,
    attempts: 0,
    commandIds: [],
    reason: phase === "registering" ? "waiting for SSM registration" : "about to install the agent",
  };
}

/** SSM says whether the instance is Online; past `deadline` without it, the work fails. */
export function onRegistration(
  job: AgentJob,
  platform: string | undefined,
  now: number,
  deadline: number,
): void {
  if (job.phase !== "registering") return;
  if (platform) {
    job.platform = platform;
    job.phase = "ready";
    job.reason = "registered with SSM";
  } else if (now >= deadline) {
    end(job, {
      ok: false,
      fault: "service",
      reason: "never came Online with SSM (check the instance profile, SSM Agent and its network path)",
    });
  }
}

/** The step that sends the install is taken by one invocation, which may act on it until `heldUntil`. */
export function onSending(job: AgentJob, now: number, heldUntil: number): void {
  job.phase = "sending";
  job.sendingSince ??= now;
  job.heldUntil = heldUntil;
}

export function onSent(job: AgentJob, commandId: string, at: number, what: string): void {
  job.phase = "installing";
  job.commandId = commandId;
  job.sentAt = at;
  job.attempts += 1;
  job.commandIds = [...new Set([...job.commandIds, commandId])];
  job.sendingSince = undefined;
  job.heldUntil = undefined;
  job.retryAt = undefined;
  job.reason = `${what} (attempt ${job.attempts}, command ${commandId})`;
}

/**
 * SendCommand failed. `unknown` (throttled, a server error): it may have gone out, so it is looked up
 * before anything is sent again. `refused`: SSM does not take commands for the instance yet.
 */
export function onSendFailed(
  job: AgentJob,
  failure: "unknown" | "refused" | { error: string },
  now: number,
): void {
  job.heldUntil = undefined;
  if (failure === "unknown") {
    job.heldUntil = now; // stale at once: the next look finds the install on the instance, or sends it
    job.reason =
      "the install could not be sent yet (SSM throttled or failed); looked up before sending again";
  } else if (failure === "refused") {
    job.phase = "registering";
    job.sendingSince = undefined;
    job.reason = "SSM does not accept commands for it yet (InvalidInstanceId); waiting for registration";
  } else {
    end(job, { ok: false, fault: "service", reason: failure.error });
  }
}

/** Right after SendCommand a command may not be listed yet (eventual consistency). */
export const INVOCATION_VISIBILITY_GRACE_MS = 60_000;

/**
 * A stale `sending`: the invocation that took it may have sent the install before it was cut off.
 * An install of ours found on the instance is followed; none found once the grace has passed, it is
 * sent again; never a second install while the first may be on its way.
 */
export function onSendLookedUp(
  job: AgentJob,
  found: { commandId: string; at: number } | undefined,
  now: number,
): void {
  if (job.phase !== "sending") return;
  if (found && !job.commandIds.includes(found.commandId)) {
    onSent(job, found.commandId, found.at, "following the install sent before an invocation was cut off");
  } else if (now - (job.sendingSince ?? now) >= INVOCATION_VISIBILITY_GRACE_MS) {
    // Never sent: registration is looked at again first (the instance may have gone meanwhile).
    job.phase = "registering";
    job.sendingSince = undefined;
    job.heldUntil = undefined;
    job.reason = "no install of ours went out; sending it once SSM says the instance is Online";
  }
}

/** The install ended; `maxAttempts` bounds the installs a job sends. */
export function onInstallEnded(job: AgentJob, judgement: Judgement, now: number, maxAttempts: number): void {
  if (job.phase !== "installing") return;
  const { verdict, evidence } = judgement;
  if (evidence.before) {
    // As a report reads it: "none" for no agent, "unknown" when no version was printed.
    job.versionBefore ??=
      evidence.before.version || (evidence.before.state === "missing" ? "none" : "unknown");
    if (evidence.before.state === "running") job.runningBefore ??= evidence.before.version || "unknown";
  }
  if (evidence.after?.version) job.agentVersion = evidence.after.version;
  job.commandId = undefined;
  switch (verdict.kind) {
    case "verified":
      if (verdict.installed) job.installed = true;
      end(job, { ok: true, reason: verdict.reason, at: judgement.endedAt });
      return;
    case "busy":
    case "restart-check":
      // Nothing was installed: that costs no attempt.
      job.attempts -= 1;
      job.phase = "waiting";
      job.retryAt = verdict.kind === "busy" ? now + verdict.retryAfterMs : now;
      job.restartCheck = verdict.kind === "restart-check";
      if (job.restartCheck) job.restartCheckSince ??= now;
      job.reason = verdict.reason;
      return;
    case "failed":
      if (verdict.retryable && job.attempts < maxAttempts) {
        job.phase = "ready";
        job.reason = `${verdict.reason}; retrying (${job.attempts} of ${maxAttempts} attempts used)`;
        return;
      }
      end(job, {
        ok: false,
        fault: verdict.fault,
        reason: verdict.retryable ? `${verdict.reason} (after ${job.attempts} attempts)` : verdict.reason,
        at: judgement.endedAt,
      });
  }
}

/** The install was never listed for the instance, long after it was sent. */
export function onNeverListed(job: AgentJob, now: number, maxAttempts: number): void {
  const reason = `command ${job.commandId} never showed an invocation for this instance`;
  const verdict = { kind: "failed", reason, fault: "service", retryable: true } as const;
  onInstallEnded(job, { evidence: {}, metrics: [], verdict }, now, maxAttempts);
}

/** How long the agent waits for a deployment in flight before CodeDeploy is asked again. */
const DEPLOYMENT_RETRY_MS = 30_000;
/** How long an older agent's restart waits for CodeDeploy at most: the launch is never held for hours. */
const RESTART_WAIT_MAX_MS = 30 * 60_000;

/** CodeDeploy answered whether a deployment is in flight on the instance (undefined: none). */
export function onDeploymentChecked(job: AgentJob, deploymentId: string | undefined, now: number): void {
  if (job.phase !== "waiting" || !job.restartCheck) return;
  if (deploymentId && now - (job.restartCheckSince ?? now) >= RESTART_WAIT_MAX_MS) {
    // Not the instance's fault, and no reason to hold it longer: it goes on with the agent it has
    // (failing open), and CodeDeploy's own hook judges it by its deployment.
    end(job, {
      ok: false,
      fault: "service",
      reason: `the older agent was left running: deployment ${deploymentId} stayed in flight on the instance (or CodeDeploy did not answer) for ${RESTART_WAIT_MAX_MS / 60_000} minutes`,
    });
  } else if (deploymentId) {
    job.retryAt = now + DEPLOYMENT_RETRY_MS;
    job.reason = `deployment ${deploymentId} is in flight on the instance; its agent is not restarted until that ends`;
  } else {
    job.restartCheck = false;
    job.restartAllowed = true;
    job.phase = "ready";
    job.reason = "no deployment in flight on the instance; the older agent may be replaced";
  }
}

/** A wait is over: the install is sent again. */
export function onWaitOver(job: AgentJob, now: number): void {
  if (job.phase === "waiting" && !job.restartCheck && (job.retryAt ?? 0) <= now) job.phase = "ready";
}

export function end(job: AgentJob, ended: JobEnd): void {
  job.phase = "finishing";
  job.ended = ended;
  job.reason = ended.reason;
  job.heldUntil = undefined;
  job.retryAt = undefined;
  job.restartCheck = undefined;
}

/** How often the work looks at SSM. */
export interface Cadence {
  /** Milliseconds between looks at an instance not yet registered, at first (they grow with the wait). */
  registrationPollMs: number;
  /** An install whose end was not signalled is looked up this long after it was sent. */
  overdueMs: number;
  /** Run until done (a replay, the failure path): an install is looked at this often instead. */
  followMs?: number;
}

/** The longest wait between two looks at one thing (also SQS's longest message delay). */
const MAX_LOOK_INTERVAL_MS = 900_000;

/** Registration usually takes seconds to a couple of minutes: until then, the shared beat. */
const REGISTRATION_BEAT_MS = 180_000;

/**
 * When a registering instance is next looked at: on the shared beat (every registrationPollMs) for three
 * minutes, then every sixth of the time waited beyond them (at most two minutes), so one that never
 * registers costs a few dozen looks and a late one is found within seconds. Aligned on the beat, the
 * messages of many invocations come back together and share one DescribeInstanceInformation.
 *
 * A launch message is back a moment after the beat it was due on (a whole-second delay, then the
 * batching window), so it is next due one interval after that beat, not one interval after now: that
 * looked every other beat. Run until done, the step sleeps exactly, up to one interval from now.
 */
export function nextRegistrationLook(startedAt: number, now: number, cadence: Cadence): number {
  const beat = cadence.registrationPollMs;
  const beyond = now - startedAt - REGISTRATION_BEAT_MS;
  const interval = Math.min(120_000, Math.max(beat, beyond / 6));
  if (cadence.followMs) return Math.floor((now + interval) / beat) * beat;
  return Math.ceil((Math.floor(now / beat) * beat + interval) / beat) * beat;
}

/**
 * When the install in flight is next looked up without an event: once overdue, then with gaps of
 * overdue, overdue, 2x, 4x ... up to 15 minutes, so an hour-long install costs about eight looks and
 * one that ends soon after it was overdue is read one overdue interval later; by hand, every followMs.
 * A read of the command after it was overdue (for an event of another of its instances) counts as
 * its overdue look: it showed every instance, so the next is one overdue interval after it, not at once.
 */
export function nextInstallLook(
  sentAt: number,
  lookups: number,
  lastLookAt: number | undefined,
  cadence: Cadence,
): number {
  if (cadence.followMs) return (lastLookAt ?? sentAt) + cadence.followMs;
  if (lookups === 0 || lastLookAt === undefined) {
    const overdueAt = sentAt + cadence.overdueMs;
    return lastLookAt !== undefined && lastLookAt >= overdueAt ? lastLookAt + cadence.overdueMs : overdueAt;
  }
  return lastLookAt + Math.min(MAX_LOOK_INTERVAL_MS, cadence.overdueMs * 2 ** (lookups - 1));
}
