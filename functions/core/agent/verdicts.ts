// What an ended command means for an instance: the next phase, or a final status with the reason the
// report gives. Pure functions of the invocation and the settings; the engine applies them.
import type { CommandInvocation, CommandPlugin } from "@aws-sdk/client-ssm";
import { INSTALL_STEPS, METRIC, type MetricName } from "../contract.js";
import {
  type AgentProbe,
  parseAlreadyCurrent,
  parseBefore,
  parseDeploymentInProgress,
  parseProbe,
  versionSatisfies,
} from "./scripts.js";
import { commandOutput, describeInvocation, IN_FLIGHT_STATUSES, isUnreachable } from "./ssm-commands.js";
import type { AgentSettings, AgentStatus, EnsureMode } from "./types.js";

/** How long an install waits for a deployment, or another install, that runs on the instance. */
export const BUSY_RETRY_MS = 30_000;

export type Verdict =
  | { finish: AgentStatus; reason: string }
  | { next: "install" | "verify"; reason: string; retryAfterMs?: number };

export interface Judgement {
  verdict: Verdict;
  metrics?: MetricName[];
}

/** What the install document found and did on one instance. */
export interface InstallJudgement extends Judgement {
  installed: boolean;
  before?: AgentProbe;
  after?: AgentProbe;
}

/**
 * An install-and-verify invocation has ended. `expected` is the version the verification demanded
 * ("" when any running agent was accepted).
 */
export function judgeInstall(
  invocation: CommandInvocation,
  settings: AgentSettings,
  attempts: number,
  expected: string,
): InstallJudgement {
  const output = commandOutput(invocation);
  const before = parseBefore(output);
  const after = parseProbe(output);
  const seen = { ...(before ? { before } : {}), ...(after ? { after } : {}) };
  const current = parseAlreadyCurrent(output);
  if (invocation.Status === "Success" && current) {
    // The agent already ran at the expected version: that is the version the report gives.
    const running = { state: "running" as const, version: before?.version || current, raw: current };
    return {
      ...seen,
      after: running,
      installed: false,
      metrics: [METRIC.verified],
      verdict: {
        finish: "VERIFIED",
        reason: `agent ${current} already runs at the expected version; nothing installed`,
      },
    };
  }
  if (invocation.Status === "Success") {
    return {
      ...seen,
      installed: true,
      metrics: [METRIC.installsSucceeded, METRIC.verified],
      verdict: {
        finish: "VERIFIED",
        reason: `installed by command ${invocation.CommandId}; agent ${after?.version || "of unknown version"} running`,
      },
    };
  }
  const deployment = parseDeploymentInProgress(output);
  if (deployment) {
    return {
      ...seen,
      installed: false,
      verdict: {
        next: "install",
        retryAfterMs: BUSY_RETRY_MS,
        reason: `deployment ${deployment} runs on the instance; its agent is not restarted until that ends`,
      },
    };
  }
  const install = plugin(invocation, INSTALL_STEPS.install);
  if (install && /already in the process of action/i.test(install.Output ?? "")) {
    return {
      ...seen,
      installed: false,
      verdict: {
        next: "install",
        retryAfterMs: BUSY_RETRY_MS,
        reason: `another install of ${settings.agentPackage} runs on the instance; waiting for it to end`,
      },
    };
  }
  if (install?.Status === "Success" && after) {
    return { ...seen, installed: true, ...judgeInstalledAgent(after, settings, expected) };
  }
  return {
    ...seen,
    installed: false,
    metrics: [METRIC.installsFailed],
    verdict: judgeFailedCommand(
      `install ${describeInvocation(invocation)}`,
      isUnreachable(invocation),
      attempts,
      settings.installAttempts,
    ),
  };
}

/** Distributor reported Success, but the verification that followed did not. */
function judgeInstalledAgent(after: AgentProbe, settings: AgentSettings, expected: string): Judgement {
  if (!settings.verify) {
    return {
      metrics: [METRIC.installsSucceeded],
      verdict: { finish: "INSTALLED", reason: "installed (verification switched off)" },
    };
  }
  const reason =
    after.state !== "running"
      ? `install reported Success but the agent is ${after.state} (version ${after.version || "unknown"})`
      : `agent ${after.version || "of unknown version"} is running, but version ${expected} is ${settings.agentVersion ? "pinned" : "the newest"}`;
  return {
    metrics: [METRIC.installsSucceeded, METRIC.verificationsFailed],
    verdict: { finish: "FAILED", reason },
  };
}

/**
 * An install sent before this run (an earlier delivery, a duplicate event): one in flight is
 * followed, never repeated; one of this launch that ended counts as an attempt, and a success is
 * checked. `attempts` counts it already.
 */
export function judgeEarlierInstall(
  invocation: CommandInvocation,
  ours: boolean,
  attempts: number,
  settings: AgentSettings,
): "follow" | "ignore" | { installed: boolean; verdict?: Verdict } {
  if (IN_FLIGHT_STATUSES.has(invocation.Status ?? "Pending")) return "follow";
  if (!ours) return "ignore";
  if (invocation.Status === "Success") {
    return {
      installed: true,
      verdict: { next: "verify", reason: `installed earlier by command ${invocation.CommandId}; checking` },
    };
  }
  if (attempts < settings.installAttempts) return { installed: false };
  return {
    installed: false,
    verdict: {
      finish: "FAILED",
      reason: `install failed ${attempts} time(s): ${describeInvocation(invocation)}`,
    },
  };
}

/** A command failed: retry the install while attempts are left and the instance can run commands. */
export function judgeFailedCommand(
  why: string,
  instanceUnreachable: boolean,
  attempts: number,
  maxAttempts: number,
): Verdict {
  if (instanceUnreachable) return { finish: "FAILED", reason: `${why}; the instance cannot run commands` };
  if (attempts < maxAttempts) {
    return { next: "install", reason: `${why}; retrying (${attempts} of ${maxAttempts} attempts used)` };
  }
  return { finish: "FAILED", reason: `${why} after ${attempts} attempt(s)` };
}

/**
 * A check ended. `probing` is the check before an install (verify-first, upgrade): an agent that is
 * missing, stopped or not at the expected version is then installed rather than failed.
 */
export function judgeVerification(
  invocation: CommandInvocation,
  probing: boolean,
  mode: EnsureMode,
  expected: string,
): Judgement & { probe?: AgentProbe } {
  const probe = parseProbe(commandOutput(invocation));
  if (!probe) {
    const why = `check ${describeInvocation(invocation)} printed no agent status`;
    if (isUnreachable(invocation) || !probing) return { verdict: { finish: "FAILED", reason: why } };
    return { verdict: { next: "install", reason: `${why}; installing` } };
  }
  const acceptable = probe.state === "running" && versionSatisfies(probe.version, expected);
  if (probing) {
    if (mode === "verify-first" && acceptable) {
      return {
        probe,
        verdict: { finish: "VERIFIED", reason: `agent ${probe.version} already running; nothing to install` },
      };
    }
    const outdated = probe.state === "running" && !acceptable ? `, older than ${expected}` : "";
    return {
      probe,
      verdict: { next: "install", reason: `agent ${describeProbe(probe)}${outdated}; installing` },
    };
  }
  if (probe.state !== "running") {
    return {
      probe,
      metrics: [METRIC.verificationsFailed],
      verdict: {
        finish: "FAILED",
        reason: `the agent is ${probe.state} (version ${probe.version || "unknown"})`,
      },
    };
  }
  if (!acceptable) {
    return {
      probe,
      metrics: [METRIC.verificationsFailed],
      verdict: {
        finish: "FAILED",
        reason: `agent ${probe.version || "of unknown version"} is running, but ${expected} is expected`,
      },
    };
  }
  return {
    probe,
    metrics: [METRIC.verified],
    verdict: { finish: "VERIFIED", reason: `agent ${probe.version} running` },
  };
}

/** How the version before an install reads in the report: "none" for no agent, "unknown" when not printed. */
export function versionBefore(probe: AgentProbe): string {
  return probe.version || (probe.state === "missing" ? "none" : "unknown");
}

function describeProbe(probe: AgentProbe): string {
  return probe.state === "missing"
    ? "not installed"
    : `${probe.state}, version ${probe.version || "unknown"}`;
}

function plugin(invocation: CommandInvocation, name: string): CommandPlugin | undefined {
  return invocation.CommandPlugins?.find((candidate) => candidate.Name === name);
}
