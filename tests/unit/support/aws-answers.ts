// Builders of the answers SSM and Auto Scaling give the launch path, shaped like the real responses
// and errors. Pure: each builds one answer from its arguments; what AWS answers when is up to the test.
import {
  type AutoScalingInstanceDetails,
  AutoScalingServiceException,
  type DescribeAutoScalingInstancesCommandOutput,
  type DescribeLifecycleHooksCommandOutput,
  type LaunchTemplateSpecification,
} from "@aws-sdk/client-auto-scaling";
import {
  type CommandInvocation,
  type CommandInvocationStatus,
  type CommandPlugin,
  type DescribeDocumentCommandOutput,
  type DescribeInstanceInformationCommandOutput,
  type ListCommandInvocationsCommandOutput,
  type PlatformType,
  type SendCommandCommandOutput,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { clock } from "../../../functions/core/common/clock.js";
import { INSTALL_STEPS } from "../../../functions/core/contract.js";

type Answer<T> = Omit<T, "$metadata">;

/** DescribeLifecycleHooks: the group's one launch hook. */
export function launchHook(
  group: string,
  hook: string,
  heartbeatTimeoutSeconds = 900,
): Answer<DescribeLifecycleHooksCommandOutput> {
  return {
    LifecycleHooks: [
      {
        LifecycleHookName: hook,
        AutoScalingGroupName: group,
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: heartbeatTimeoutSeconds,
        GlobalTimeout: heartbeatTimeoutSeconds * 100,
        DefaultResult: "ABANDON",
      },
    ],
  };
}

/** DescribeAutoScalingInstances: these instances of the group, each in its lifecycle state. */
export function lifecycleStates(
  group: string,
  ...instances: [instanceId: string, lifecycleState: string][]
): Answer<DescribeAutoScalingInstancesCommandOutput> {
  return {
    AutoScalingInstances: instances.map(([instanceId, lifecycleState]) =>
      instanceDetails(group, instanceId, lifecycleState),
    ),
  };
}

/** DescribeAutoScalingInstances: one instance of the group, and the AMI and launch template it came from. */
export function launchedFrom(
  group: string,
  instanceId: string,
  lifecycleState: string,
  imageId: string,
  launchTemplate: LaunchTemplateSpecification,
): Answer<DescribeAutoScalingInstancesCommandOutput> {
  return {
    AutoScalingInstances: [
      {
        ...instanceDetails(group, instanceId, lifecycleState),
        InstanceType: "m5.large",
        ImageId: imageId,
        LaunchTemplate: launchTemplate,
      },
    ],
  };
}

function instanceDetails(
  group: string,
  instanceId: string,
  lifecycleState: string,
): AutoScalingInstanceDetails {
  return {
    InstanceId: instanceId,
    AutoScalingGroupName: group,
    AvailabilityZone: "us-east-1a",
    LifecycleState: lifecycleState,
    HealthStatus: "HEALTHY",
    ProtectedFromScaleIn: false,
  };
}

/** DescribeInstanceInformation: these instances Online with SSM (an empty list: not registered yet). */
export function online(
  instanceIds: readonly string[],
  platform: PlatformType = "Linux",
): Answer<DescribeInstanceInformationCommandOutput> {
  return {
    InstanceInformationList: instanceIds.map((instanceId) => ({
      InstanceId: instanceId,
      PingStatus: "Online",
      PlatformType: platform,
      ResourceType: "EC2Instance",
    })),
  };
}

/** SendCommand: the command was accepted under this id. */
export function commandSent(commandId: string): Answer<SendCommandCommandOutput> {
  return { Command: { CommandId: commandId, Status: "Pending" } };
}

/** ListCommandInvocations: these invocations, in one page. */
export function listed(...invocations: CommandInvocation[]): Answer<ListCommandInvocationsCommandOutput> {
  return { CommandInvocations: invocations };
}

/** DescribeDocument of a Distributor package: its default version's VersionName is the newest published. */
export function publishedPackage(name: string, versionName: string): Answer<DescribeDocumentCommandOutput> {
  return {
    Document: {
      Name: name,
      Owner: "Amazon",
      DocumentType: "Package",
      DocumentFormat: "JSON",
      Status: "Active",
      VersionName: versionName,
      DocumentVersion: "14",
      DefaultVersion: "14",
      LatestVersion: "14",
      PlatformTypes: ["Windows", "Linux", "MacOS"],
    },
  };
}

/**
 * One instance's invocation of a command, with no step results (as in flight, or as SSM lists an
 * invocation whose instance went away).
 */
export function invocation(
  commandId: string,
  instanceId: string,
  status: CommandInvocationStatus,
  extra: Partial<CommandInvocation> = {},
): CommandInvocation {
  return {
    CommandId: commandId,
    InstanceId: instanceId,
    Status: status,
    StatusDetails: status,
    RequestedDateTime: new Date(clock.now()),
    ...extra,
  };
}

// --- The stage's own documents (functions/core/agent/documents.ts) as their invocations end ----------

export type Platform = "Linux" | "Windows";

/** The agent as the scripts see it: state, and its version as its .version file records it. */
export interface Agent {
  state: "running" | "stopped" | "missing";
  version: string;
}

export const NO_AGENT: Agent = { state: "missing", version: "" };
export const running = (version: string): Agent => ({ state: "running", version: recorded(version) });
export const stopped = (version: string): Agent => ({ state: "stopped", version: recorded(version) });

/** The agent records `agent_version: OFFICIAL_1.8.1-1837_rpm`; the scripts print what follows the key. */
function recorded(version: string): string {
  return `OFFICIAL_${version}-1837_rpm`;
}

const beforeLine = (agent: Agent) =>
  `AGENTFIX_BEFORE_STATUS=${agent.state} AGENTFIX_BEFORE_VERSION=${agent.version}\n`;
const agentLine = (agent: Agent) =>
  `AGENTFIX_AGENT_STATUS=${agent.state} AGENTFIX_AGENT_VERSION=${agent.version}\n`;

/** SSM Agent appends this to a failed step whose onFailure is exit or successAndExit (runpluginutil.go). */
const ON_FAILURE_NOTE =
  "\nStep was found to have onFailure property. Further document steps will be skipped.";
/** The exit code SSM Agent reports for a step that ended the document with success (successAndExit). */
const EXIT_WITH_SUCCESS = 168;

type Part = "skipIfCurrent" | "guard" | "install" | "verify";
interface StepRun {
  status: "Success" | "Failed";
  output: string;
  responseCode?: number;
}

/** The install document's steps in order: [part, name, platform (none: both), action]. */
const INSTALL_DOCUMENT_STEPS: [Part, string, Platform | undefined, string][] = [
  ["skipIfCurrent", INSTALL_STEPS.skipIfCurrentLinux, "Linux", "aws:runShellScript"],
  ["skipIfCurrent", INSTALL_STEPS.skipIfCurrentWindows, "Windows", "aws:runPowerShellScript"],
  ["guard", INSTALL_STEPS.guardLinux, "Linux", "aws:runShellScript"],
  ["guard", INSTALL_STEPS.guardWindows, "Windows", "aws:runPowerShellScript"],
  ["install", INSTALL_STEPS.install, undefined, "aws:configurePackage"],
  ["verify", INSTALL_STEPS.verifyLinux, "Linux", "aws:runShellScript"],
  ["verify", INSTALL_STEPS.verifyWindows, "Windows", "aws:runPowerShellScript"],
];

/**
 * A step that did not run (the other platform's, or any after a step that ended the document) reports
 * Success with StatusDetails Skipped and its reason as its output, as the sandbox emulates SSM Agent:
 * the API has no Skipped status.
 */
function skipped(name: string, reason: string): CommandPlugin {
  return { Name: name, Status: "Success", StatusDetails: "Skipped", ResponseCode: 0, Output: reason };
}

function stepPlugin(
  name: string,
  platform: Platform | undefined,
  action: string,
  on: Platform,
  run: StepRun | undefined,
): CommandPlugin {
  if (platform && platform !== on) {
    return skipped(
      name,
      `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, ${platform}]'. Step name: ${name}`,
    );
  }
  if (!run) {
    return skipped(
      name,
      `Plugin with name ${action} and id ${name} skipped due to prior step with an exit condition`,
    );
  }
  return {
    Name: name,
    Status: run.status,
    StatusDetails: run.status,
    ResponseCode: run.responseCode ?? (run.status === "Success" ? 0 : 1),
    Output: run.output,
  };
}

export interface InstallOutcome {
  /** The instance's platform: its steps run, the other platform's are skipped. Linux unless said. */
  platform?: Platform;
  /** The agent before the install, as skip-if-current printed it. None unless said. */
  before?: Agent;
  /** The Distributor package installed: AWSCodeDeployAgent unless said. */
  package?: string;
}

function installInvocation(
  commandId: string,
  instanceId: string,
  status: CommandInvocationStatus,
  outcome: InstallOutcome,
  runs: Partial<Record<Part, StepRun>>,
): CommandInvocation {
  const on = outcome.platform ?? "Linux";
  return invocation(commandId, instanceId, status, {
    CommandPlugins: INSTALL_DOCUMENT_STEPS.map(([part, name, platform, action]) =>
      stepPlugin(name, platform, action, on, runs[part]),
    ),
  });
}

const looked = (outcome: InstallOutcome): StepRun => ({
  status: "Success",
  output: beforeLine(outcome.before ?? NO_AGENT),
});
const NO_DEPLOYMENT: StepRun = {
  status: "Success",
  output: "AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=none\n",
};
const installed = (outcome: InstallOutcome, version: string): StepRun => {
  const name = outcome.package ?? "AWSCodeDeployAgent";
  return {
    status: "Success",
    output: `Initiating ${name} ${version} install\nSuccessfully installed ${name} ${version}`,
  };
};

/** The install document installed the agent, and the verification found it running at `version`. */
export function installedAndVerified(
  commandId: string,
  instanceId: string,
  version = "1.8.1",
  outcome: InstallOutcome = {},
): CommandInvocation {
  return installInvocation(commandId, instanceId, "Success", outcome, {
    skipIfCurrent: looked(outcome),
    guard: NO_DEPLOYMENT,
    install: installed(outcome, version),
    verify: { status: "Success", output: agentLine(running(version)) },
  });
}

/**
 * Distributor reported Success, but the verification found the agent `after` (stopped, or at another
 * version than expected) and failed the invocation.
 */
export function installedButNotVerified(
  commandId: string,
  instanceId: string,
  after: Agent,
  outcome: InstallOutcome & { version?: string } = {},
): CommandInvocation {
  return installInvocation(commandId, instanceId, "Failed", outcome, {
    skipIfCurrent: looked(outcome),
    guard: NO_DEPLOYMENT,
    install: installed(outcome, outcome.version ?? "1.8.1"),
    verify: { status: "Failed", output: agentLine(after) },
  });
}

/**
 * skip-if-current found the agent running at the expected version and ended the document
 * (successAndExit): nothing is installed, and the invocation succeeds.
 */
export function alreadyCurrent(
  commandId: string,
  instanceId: string,
  version = "1.8.1",
  outcome: Omit<InstallOutcome, "before"> = {},
): CommandInvocation {
  return installInvocation(commandId, instanceId, "Success", outcome, {
    skipIfCurrent: {
      status: "Success",
      responseCode: EXIT_WITH_SUCCESS,
      output: `${beforeLine(running(version))}${agentLine(running(version))}AGENTFIX_ALREADY_CURRENT=${version}\n${ON_FAILURE_NOTE}`,
    },
  });
}

/**
 * The deployment guard found a lifecycle event of `deploymentId` running and ended the document
 * (exit). Only a running agent runs one: `before` says which.
 */
export function deploymentInProgress(
  commandId: string,
  instanceId: string,
  deploymentId: string,
  outcome: InstallOutcome & { before: Agent },
): CommandInvocation {
  return installInvocation(commandId, instanceId, "Failed", outcome, {
    skipIfCurrent: looked(outcome),
    guard: {
      status: "Failed",
      output: `AGENTFIX_DEPLOYMENT_IN_PROGRESS=${deploymentId}\n${ON_FAILURE_NOTE}`,
    },
  });
}

/**
 * Distributor failed the install (its message on stderr); the verification after it found the agent
 * `after` (none unless said) and failed the invocation.
 */
export function installFailed(
  commandId: string,
  instanceId: string,
  outcome: InstallOutcome & { after?: Agent } = {},
  message = "install.sh: the agent's installer exited with status 1",
): CommandInvocation {
  const name = outcome.package ?? "AWSCodeDeployAgent";
  return installInvocation(commandId, instanceId, "Failed", outcome, {
    skipIfCurrent: looked(outcome),
    guard: NO_DEPLOYMENT,
    install: {
      status: "Failed",
      output: `Initiating ${name} install\nFailed to install package; install status Failed\n----------ERROR-------\n${message}`,
    },
    verify: { status: "Failed", output: agentLine(outcome.after ?? NO_AGENT) },
  });
}

/** Another install of the package runs on the instance: Distributor's per-package lock refused this one. */
export function installLocked(
  commandId: string,
  instanceId: string,
  outcome: InstallOutcome = {},
): CommandInvocation {
  const name = outcome.package ?? "AWSCodeDeployAgent";
  return installInvocation(commandId, instanceId, "Failed", outcome, {
    skipIfCurrent: looked(outcome),
    guard: NO_DEPLOYMENT,
    install: {
      status: "Failed",
      output: `\n----------ERROR-------\nPackage "${name}" is already in the process of action "Install"`,
    },
    verify: { status: "Failed", output: agentLine(outcome.before ?? NO_AGENT) },
  });
}

/**
 * An older agent runs and the install would restart it: the guard ended the document (exit) so that
 * CodeDeploy can be asked first whether a deployment is in flight there.
 */
export function restartNeeded(commandId: string, instanceId: string, before: Agent): CommandInvocation {
  return installInvocation(
    commandId,
    instanceId,
    "Failed",
    { before },
    {
      skipIfCurrent: looked({ before }),
      guard: {
        status: "Failed",
        output: `AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=${before.version.replace(/^OFFICIAL_|-.*$/g, "")}\n${ON_FAILURE_NOTE}`,
      },
    },
  );
}

/** SSM's throttling answer (the SDK models no class for it on these operations). */
export function ssmThrottling(): SSMServiceException {
  return new SSMServiceException({
    name: "ThrottlingException",
    $fault: "client",
    message: "Rate exceeded",
    $metadata: { httpStatusCode: 400 },
  });
}

/** Auto Scaling's throttling answer (query protocol: the code is `Throttling`). */
export function autoScalingThrottling(): AutoScalingServiceException {
  return new AutoScalingServiceException({
    name: "Throttling",
    $fault: "client",
    message: "Rate exceeded",
    $metadata: { httpStatusCode: 400 },
  });
}

/** What CompleteLifecycleAction answers once the action is over (completed, timed out, instance gone). */
export function noActiveLifecycleAction(token: string): AutoScalingServiceException {
  return new AutoScalingServiceException({
    name: "ValidationError",
    $fault: "client",
    message: `No active Lifecycle Action found with token ${token}`,
    $metadata: { httpStatusCode: 400 },
  });
}
