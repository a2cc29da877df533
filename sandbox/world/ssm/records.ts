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

/**
 * What one plugin run reports: the invocation of a one-step AWS document, or one step of a document's
 * invocation (CommandPlugins[] and GetCommandInvocation).
 */
export interface PluginResult {
  status: InvocationStatus | "Skipped";
  statusDetails: string;
  responseCode: number;
  startedAt?: number;
  endedAt?: number;
  /** What the plugin wrote to stdout and stderr (GetCommandInvocation's StandardOutput/ErrorContent). */
  output: string;
  errorOutput: string;
  /**
   * CommandPlugins[].Output as SSM Agent set it when the plugin ended, when it differs from stdout and
   * stderr joined: a skipped step's reason, or the output before an onFailure note was appended.
   */
  pluginOutput?: string;
}

export type PluginKind = "install" | "verify" | "script" | "other";

/** One step of a Command document's invocation, as CommandPlugins[] lists it. */
export interface StepRecord extends PluginResult {
  /** The step's name: CommandPlugins[].Name and GetCommandInvocation's PluginName. */
  name: string;
  action: string;
  kind: PluginKind;
  /** The Distributor package an install step installs, its `{{ parameters }}` resolved. */
  packageName?: string;
}

export interface Invocation extends PluginResult {
  commandId: string;
  instanceId: string;
  documentName: string;
  comment: string;
  requestedAt: number;
  visibleAt: number;
  status: InvocationStatus;
  pluginName: string;
  kind: PluginKind;
  packageName?: string;
  /** The steps of a document created in the account (createDocument), in order; none for the AWS documents. */
  steps?: StepRecord[];
  /** Who started it: a SendCommand call or a State Manager association (not listed as a command). */
  source: "api" | "association";
  timers: TimerHandle[];
}

/** True when the invocation installs an agent now or is about to: the whole AWS-ConfigureAWSPackage invocation until it ends, or a document's install step while it runs. */
export function installInFlight(invocation: Invocation): boolean {
  if (invocation.steps)
    return invocation.steps.some((step) => step.kind === "install" && step.status === "InProgress");
  return invocation.kind === "install" && !isTerminal(invocation.status);
}

/** The package the invocation is installing right now (Distributor holds its lock), if any. */
export function packageBeingInstalled(invocation: Invocation): string | undefined {
  if (invocation.steps) {
    return invocation.steps.find((step) => step.kind === "install" && step.status === "InProgress")
      ?.packageName;
  }
  return invocation.kind === "install" && invocation.status === "InProgress"
    ? invocation.packageName
    : undefined;
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
  /** The document's parameters with their defaults, for a document created in the account. */
  resolvedParameters?: Record<string, string[]>;
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
