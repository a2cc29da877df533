// What an ended install-and-verify invocation means for its instance (a pure function; job.ts applies
// it). Only evidence counts: `Success` with no line showing a running agent at an acceptable version
// is not verified, and a `Failed` install followed by a running, acceptable agent is.
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import type { AgentConfig } from "../config.js";
import { INSTALL_STEPS, METRIC, type MetricName } from "../contract.js";
import { type Evidence, readEvidence } from "./scripts.js";
import { commandOutput, describeInvocation } from "./ssm-commands.js";
import { isVerified } from "./verified.js";

/** How long an install waits for a deployment, or another install, that runs on the instance. */
const BUSY_RETRY_MS = 30_000;

/**
 * Whose fault a failure is: `instance` only when the instance itself could not take a working agent;
 * `service` for everything around it (SSM, Distributor, throttling, us), which must never cost the
 * fleet an instance: the stage's failure result applies to the first kind alone.
 */
export type Fault = "instance" | "service";

export type Verdict =
  | { kind: "verified"; reason: string; installed: boolean }
  /** A deployment or another install runs there: try again later, no attempt used. */
  | { kind: "busy"; reason: string; retryAfterMs: number }
  /** An older agent runs: CodeDeploy must say no deployment is in flight before it is restarted. */
  | { kind: "restart-check"; reason: string }
  /** This attempt failed; `retryable` when another attempt could help. */
  | { kind: "failed"; reason: string; fault: Fault; retryable: boolean };

export interface Judgement {
  verdict: Verdict;
  evidence: Evidence;
  metrics: MetricName[];
  /** When the invocation's last step finished, as SSM reports it (AWS ms), if it says. */
  endedAt?: number;
}

/** Distributor's own troubles (manifest, download, throttling, permissions), not the instance's. */
const DISTRIBUTOR_FAULT =
  /manifest|could not find|not found|ResourceNotFound|Throttl|Rate exceeded|AccessDenied|failed to download|unable to download|timed out connecting/i;

/**
 * Outcomes that say the instance itself is gone or unreachable, so retrying the command cannot help
 * (StatusDetails values: https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html).
 */
const UNREACHABLE = new Set(["Terminated", "Undeliverable", "Delivery Timed Out"]);

/** An install-and-verify invocation ended; `expected` is the version the agent must run at, or newer. */
export function judgeInstall(
  invocation: CommandInvocation,
  config: AgentConfig,
  expected: string,
): Judgement {
  const finished = (invocation.CommandPlugins ?? []).map(
    (step) => step.ResponseFinishDateTime?.getTime() ?? 0,
  );
  const endedAt = Math.max(0, ...finished) || undefined;
  return { ...verdictOf(invocation, config, expected), endedAt };
}

function verdictOf(invocation: CommandInvocation, config: AgentConfig, expected: string): Judgement {
  const evidence = readEvidence(commandOutput(invocation));
  const install = invocation.CommandPlugins?.find((candidate) => candidate.Name === INSTALL_STEPS.install);
  // A step that did not run reports Success with StatusDetails Skipped (ended early, other platform).
  const installed = install?.Status === "Success" && install.StatusDetails !== "Skipped";
  // On a stage that takes the latest, what Distributor just installed is the latest.
  const accept = installed && !config.AGENT_VERSION ? "" : expected;
  const version = evidence.after?.version || "of unknown version";
  if (isVerified(evidence.after, accept)) {
    const reason = evidence.alreadyCurrent
      ? `agent ${version} already runs at ${expected || "any version"} or newer; nothing installed`
      : installed
        ? `installed by command ${invocation.CommandId}; agent ${version} running`
        : `agent ${version} runs at ${expected || "any version"} or newer (command ${invocation.CommandId}); not reinstalled`;
    const metrics = installed ? [METRIC.installsSucceeded, METRIC.verified] : [METRIC.verified];
    return { evidence, metrics, verdict: { kind: "verified", reason, installed } };
  }
  if (evidence.deploymentInProgress) {
    const reason = `deployment ${evidence.deploymentInProgress} runs on the instance; its agent is not restarted until that ends`;
    return { evidence, metrics: [], verdict: { kind: "busy", reason, retryAfterMs: BUSY_RETRY_MS } };
  }
  if (evidence.restartNeeded) {
    const reason = `agent ${evidence.restartNeeded} runs on the instance; asking CodeDeploy whether a deployment is in flight there before restarting it`;
    return { evidence, metrics: [], verdict: { kind: "restart-check", reason } };
  }
  if (install && /already in the process of action/i.test(install.Output ?? "")) {
    const reason = `another install of ${config.AGENT_PACKAGE} runs on the instance; waiting for it to end`;
    return { evidence, metrics: [], verdict: { kind: "busy", reason, retryAfterMs: BUSY_RETRY_MS } };
  }
  const failed = install?.Status === "Failed" || install?.Status === "TimedOut";
  const metrics: MetricName[] = failed ? [METRIC.installsFailed] : [];
  const why = describeInvocation(invocation);
  const failure = (reason: string, fault: Fault, retryable: boolean): Judgement => ({
    evidence,
    metrics,
    verdict: { kind: "failed", reason, fault, retryable },
  });
  if (UNREACHABLE.has(invocation.StatusDetails ?? "")) {
    // Terminated, or SSM could not deliver the command: no agent can be put there from here.
    const fault = invocation.StatusDetails === "Terminated" ? "instance" : "service";
    return failure(`${why}; the instance cannot run commands`, fault, false);
  }
  if (failed && DISTRIBUTOR_FAULT.test(install?.Output ?? ""))
    return failure(`install ${why}`, "service", true);
  const reason = !evidence.after
    ? `${why}; it printed no evidence of a running agent`
    : evidence.after.state !== "running"
      ? `${why}; the agent is ${evidence.after.state} (version ${evidence.after.version || "unknown"})`
      : `${why}; agent ${version} runs, older than ${accept}`;
  if (evidence.after) metrics.push(METRIC.verificationsFailed);
  return failure(reason, "instance", true);
}
