// What the install / verify engine is asked to do, what it reports per instance, and the state it
// keeps for each instance while it works (its phases are drawn in ./README.md).
import type { AgentConfig } from "../config.js";
import { type AgentPackage, agentDocumentNames } from "../contract.js";

export interface AgentSettings {
  /** The stage's own documents: install (unless current or deploying) and verify; check only. */
  installDocument: string;
  checkDocument: string;
  agentPackage: AgentPackage;
  /** "" installs the latest published version. */
  agentVersion: string;
  verify: boolean;
  installAttempts: number;
  pollIntervalMs: number;
  dryRun: boolean;
}

export function agentSettings(config: AgentConfig): AgentSettings {
  const documents = agentDocumentNames(config.STAGE);
  return {
    installDocument: documents.install,
    checkDocument: documents.check,
    agentPackage: config.AGENT_PACKAGE,
    agentVersion: config.AGENT_VERSION,
    verify: config.VERIFY_AGENT,
    installAttempts: config.INSTALL_ATTEMPTS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    dryRun: config.DRY_RUN,
  };
}

/**
 * - `install`: install (or follow an install already sent since `since`), then verify.
 * - `verify-first`: verify; install only when the agent is missing, stopped or not the pinned version.
 * - `upgrade`: verify to record the version before, install, verify again.
 */
export type EnsureMode = "install" | "verify-first" | "upgrade";

export interface EnsureAgentsRequest {
  instanceIds: string[];
  mode: EnsureMode;
  /** AWS-time ms; installs of this package sent after it count as this job's own (resume). */
  since?: number;
  /** AWS-time ms; an instance not Online with SSM by then fails (unless it has its own deadline below). */
  registrationDeadline: number;
  /** Per instance: AWS-time ms by which it must be Online with SSM (its lifecycle action's start + timeout). */
  registrationDeadlines?: ReadonlyMap<string, number>;
  /** AWS-time ms; stop and leave unfinished instances PENDING. */
  deadline: number;
  correlationId: string;
  /**
   * Called once per poll round with the instances still in progress (heartbeats live here); returns
   * the instances to stop working on (for example because their lifecycle action ended).
   */
  onTick?: (now: number, pending: string[]) => Promise<readonly string[] | undefined>;
  /**
   * Called as soon as an instance's result is final (not PENDING), while the others are still being
   * worked on, so its lifecycle action can be completed at once. Awaited before ensureAgents returns.
   */
  onSettled?: (result: AgentResult) => Promise<void>;
}

export type AgentStatus = "VERIFIED" | "INSTALLED" | "FAILED" | "PENDING" | "DRY_RUN" | "STOPPED";

export interface AgentResult {
  instanceId: string;
  /**
   * VERIFIED: running and acceptable; INSTALLED: installed, verification switched off; DRY_RUN: stopped
   * before the first SendCommand; PENDING: unfinished when the time budget ran out; STOPPED: the
   * caller asked to stop (its lifecycle action ended).
   */
  status: AgentStatus;
  reason: string;
  platform?: string;
  versionBefore?: string;
  agentVersion?: string;
  /** The agent as the install found it when it already ran (baked into the AMI and started at boot). */
  runningBefore?: string;
  /** The version the agent had to run at; "" when any was accepted (latest, newest unknown). */
  expectedVersion?: string;
  installCommandIds: string[];
  verifyCommandIds: string[];
  /** True when this job sent (or followed) an install that succeeded. */
  installed: boolean;
}

export type Phase =
  | "registering"
  | "probe" // verify before installing (verify-first, upgrade)
  | "probing"
  | "install"
  | "installing"
  | "verify"
  | "verifying"
  | "done";

/** An instance while the engine works on it: its result so far plus where it stands. */
export interface AgentJob extends AgentResult {
  phase: Phase;
  attempts: number;
  commandId?: string;
  sentAt?: number;
  readySince?: number;
  probeDone: boolean;
  /** AWS-time ms before which no new install is sent (a deployment or another install runs there). */
  retryAt?: number;
}

export function newJob(instanceId: string): AgentJob {
  return {
    instanceId,
    status: "PENDING",
    reason: "waiting for SSM registration",
    installCommandIds: [],
    verifyCommandIds: [],
    installed: false,
    phase: "registering",
    attempts: 0,
    probeDone: false,
  };
}

export function toResult(job: AgentJob): AgentResult {
  const {
    phase: _phase,
    attempts: _a,
    commandId: _c,
    sentAt: _s,
    readySince: _r,
    probeDone: _p,
    retryAt: _t,
    ...result
  } = job;
  return result;
}

export function describePhase(phase: Phase): string {
  switch (phase) {
    case "registering":
      return "waiting for SSM registration";
    case "install":
    case "installing":
      return "installing the agent";
    default:
      return "verifying the agent";
  }
}
