import type { Distribution } from "../random.js";
import type { TimerHandle } from "../scheduler.js";

// What Systems Manager keeps: commands, their invocations per instance, and the model's settings.

export interface SsmOptions {
  packageVersions?: Record<string, string[]>;
  /** AWS seconds from launch to SSM registration when the AMI does not say. */
  registrationDelaySeconds?: Distribution;
  windowsRegistrationDelaySeconds?: Distribution;
  /** AWS seconds an agent install takes once the command reached the instance. */
  installSeconds?: Distribution;
  windowsInstallSeconds?: Distribution;
  installFailureProbability?: number;
  /** Probability that an install reports Success although the agent does not run afterwards. */
  installSucceedsWithoutAgentProbability?: number;
  /** AWS seconds until a sent command reaches the instance's SSM Agent. */
  deliverySeconds?: Distribution;
  /** AWS seconds until a new invocation shows in List/GetCommandInvocation (eventual consistency). */
  visibilitySeconds?: Distribution;
  /** AWS seconds a shell script (verification or other) runs. */
  scriptSeconds?: Distribution;
}

export interface SsmCounters {
  /** Installs sent to an instance while another install was in flight there. */
  duplicateInstalls: number;
  installsSent: number;
  verifications: number;
}

export type InvocationStatus =
  | "Pending"
  | "InProgress"
  | "Delayed"
  | "Success"
  | "Cancelled"
  | "TimedOut"
  | "Failed"
  | "Cancelling";

const TERMINAL = new Set<InvocationStatus>(["Success", "Cancelled", "TimedOut", "Failed"]);

export function isTerminal(status: InvocationStatus): boolean {
  return TERMINAL.has(status);
}

/** The status words the SSM API uses in StatusDetails (note the spaces). */
export function detailsOf(status: InvocationStatus): string {
  return status === "InProgress" ? "In Progress" : status;
}

export interface Invocation {
  commandId: string;
  instanceId: string;
  documentName: string;
  comment: string;
  requestedAt: number;
  visibleAt: number;
  status: InvocationStatus;
  statusDetails: string;
  responseCode: number;
  startedAt?: number;
  endedAt?: number;
  output: string;
  errorOutput: string;
  pluginName: string;
  kind: "install" | "verify" | "script" | "other";
  packageName?: string;
  /** Who started it: a SendCommand call or a State Manager association (not listed as a command). */
  source: "api" | "association";
  timers: TimerHandle[];
}

export interface Command {
  commandId: string;
  documentName: string;
  comment: string;
  parameters: Record<string, string[]>;
  instanceIds: string[];
  targets: { Key: string; Values: string[] }[];
  requestedAt: number;
  timeoutSeconds: number;
  maxConcurrency: string;
  maxErrors: string;
  invocations: Invocation[];
}

export interface SendCommandInput {
  DocumentName?: string;
  DocumentVersion?: string;
  InstanceIds?: string[];
  Targets?: { Key?: string; Values?: string[] }[];
  Parameters?: Record<string, string[]>;
  Comment?: string;
  TimeoutSeconds?: number;
  MaxConcurrency?: string;
  MaxErrors?: string;
}
