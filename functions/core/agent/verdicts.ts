// What an ended command means for an instance: the next phase, or a final status with the reason the
// report gives. Pure functions of the invocation and the settings; the engine applies them.
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import { METRIC, type MetricName } from "../contract.js";
import { type AgentProbe, parseProbe, versionSatisfies } from "./scripts.js";
import { commandOutput, describeInvocation, IN_FLIGHT_STATUSES, isUnreachable } from "./ssm-commands.js";
import type { AgentSettings, AgentStatus, EnsureMode } from "./types.js";

export type Verdict =
  | { finish: AgentStatus; reason: string }
  | { next: "install" | "verify"; reason: string };

export interface Judgement {
  verdict: Verdict;
  metric?: MetricName;
}

/** An install this engine sent (or followed) has ended. */
export function judgeInstall(
  invocation: CommandInvocation,
  settings: AgentSettings,
  attempts: number,
): Judgement & { installed: boolean } {
  if (invocation.Status === "Success") {
    return {
      installed: true,
      metric: METRIC.installsSucceeded,
      verdict: settings.verify
        ? { next: "verify", reason: `install succeeded (command ${invocation.CommandId}); verifying` }
        : {
            finish: "INSTALLED",
            reason: `installed by command ${invocation.CommandId} (verification switched off)`,
          },
    };
  }
  return {
    installed: false,
    metric: METRIC.installsFailed,
    verdict: judgeFailedCommand(
      `install ${describeInvocation(invocation)}`,
      isUnreachable(invocation),
      attempts,
      settings.installAttempts,
    ),
  };
}

/**
 * An install sent before this run (an earlier delivery, a duplicate event, the association): one in
 * flight is followed, never repeated; one of this launch that ended counts as an attempt, and a
 * success is verified. `attempts` counts it already.
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
      verdict: settings.verify
        ? { next: "verify", reason: `installed earlier by command ${invocation.CommandId}; verifying` }
        : { finish: "INSTALLED", reason: "installed earlier (verification switched off)" },
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
 * A verification ended. `probing` is the check before an install (verify-first, upgrade): an agent
 * that is missing, stopped or not acceptable is then installed rather than failed.
 */
export function judgeVerification(
  invocation: CommandInvocation,
  probing: boolean,
  mode: EnsureMode,
  settings: AgentSettings,
): Judgement & { probe?: AgentProbe } {
  const probe = parseProbe(commandOutput(invocation));
  if (!probe) {
    const why = `verification ${describeInvocation(invocation)} printed no agent status`;
    if (isUnreachable(invocation) || !probing) return { verdict: { finish: "FAILED", reason: why } };
    return { verdict: { next: "install", reason: `${why}; installing` } };
  }
  if (probing) {
    if (mode === "verify-first" && isAcceptable(probe, settings)) {
      return {
        probe,
        verdict: { finish: "VERIFIED", reason: `agent ${probe.version} already running; nothing to install` },
      };
    }
    return { probe, verdict: { next: "install", reason: `agent ${describeProbe(probe)}; installing` } };
  }
  if (probe.state !== "running") {
    return {
      probe,
      metric: METRIC.verificationsFailed,
      verdict: {
        finish: "FAILED",
        reason: `install reported Success but the agent is ${probe.state} (version ${probe.version || "unknown"})`,
      },
    };
  }
  if (!versionSatisfies(probe.version, settings.agentVersion)) {
    return {
      probe,
      metric: METRIC.verificationsFailed,
      verdict: {
        finish: "FAILED",
        reason: `agent ${probe.version || "of unknown version"} is running, but version ${settings.agentVersion} is pinned`,
      },
    };
  }
  return {
    probe,
    metric: METRIC.verified,
    verdict: { finish: "VERIFIED", reason: `agent ${probe.version} running` },
  };
}

/** How the version before an install reads in the report: "none" for no agent, "unknown" when not printed. */
export function versionBefore(probe: AgentProbe): string {
  return probe.version || (probe.state === "missing" ? "none" : "unknown");
}

function isAcceptable(probe: AgentProbe, settings: AgentSettings): boolean {
  return probe.state === "running" && versionSatisfies(probe.version, settings.agentVersion);
}

function describeProbe(probe: AgentProbe): string {
  return probe.state === "missing"
    ? "not installed"
    : `${probe.state}, version ${probe.version || "unknown"}`;
}
