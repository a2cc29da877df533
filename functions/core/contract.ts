// The AWS names this service and its surroundings agree on, defined once: the functions use them,
// the stacks deploy them, and the sandbox emulates them. Nothing here imports an SDK, so stacks and
// scripts can import it without pulling in a client.

/** One service name for logs, metrics and traces; the metrics namespace of every function. */
export const SERVICE_NAME = "agentfix";
export const METRICS_NAMESPACE = "Agentfix";

// --- Systems Manager ------------------------------------------------------------------------

/** Distributor packages of the CodeDeploy agent: 1.x, and 2.x (a separate package, no upgrade path). */
/** The explicit "every group" (or every deployment group) of a stage's scope: never an empty list. */
export const ALL = "*";

export const AGENT_PACKAGES = ["AWSCodeDeployAgent", "AWSCodeDeployAgentV2"] as const;
export type AgentPackage = (typeof AGENT_PACKAGES)[number];

/**
 * AWS's Distributor document: installs any package, ours or another team's (the CloudWatch agent,
 * Inspector, ...). The service never sends it; the sandbox runs it for others.
 */
export const DISTRIBUTOR_DOCUMENT = "AWS-ConfigureAWSPackage";
/**
 * AWS's free-shell documents. Whoever may send them administers the instance, so the service never
 * does; the sandbox runs them for others.
 */
export const RUN_SHELL_SCRIPT_DOCUMENT = "AWS-RunShellScript";
export const RUN_POWERSHELL_SCRIPT_DOCUMENT = "AWS-RunPowerShellScript";
/**
 * First lines of the scripts in the service's own documents: each names its script in the instance's
 * command history, and the sandbox knows a script by it.
 */
export const VERIFY_MARKER = "# agentfix verify-agent";
export const SKIP_IF_CURRENT_MARKER = "# agentfix skip-if-current";
export const DEPLOYMENT_GUARD_MARKER = "# agentfix deployment-guard";

/**
 * The service's own Command document (schemaVersion 2.2, created by the stack for each stage): it
 * installs the agent with Distributor unless it already runs at the expected version or restarting it
 * could fail a deployment, then verifies it. Its scripts are fixed, so whoever may send it cannot run
 * anything else on an instance.
 */
export function installDocumentName(stage: string): string {
  return `agentfix-${stage}-install-codedeploy-agent`;
}
/** Step names of the install document, as CommandPlugins[].Name reports them. */
export const INSTALL_STEPS = {
  skipIfCurrentLinux: "skipIfCurrentLinux",
  skipIfCurrentWindows: "skipIfCurrentWindows",
  guardLinux: "deploymentGuardLinux",
  guardWindows: "deploymentGuardWindows",
  install: "installAgent",
  verifyLinux: "verifyLinux",
  verifyWindows: "verifyWindows",
} as const;

/** A pinned agent version (`1.8.1`), or empty for the latest published one. */
export const AGENT_VERSION_PATTERN = /^(\d+(\.\d+){0,3})?$/;
export const AGENT_VERSION_HINT = "a version such as 1.8.1, or empty for the latest";

/** SendCommand takes at most 50 instance ids; DescribeInstanceInformation returns at most 50 rows. */
export const MAX_INSTANCE_IDS_PER_COMMAND = 50;

/** When the failure path redeploys: on an agent signature, also when the upgrade changed an agent, or never. */
export const REDEPLOY_POLICIES = ["agent-signature", "agent-changed", "never"] as const;
export type RedeployWhen = (typeof REDEPLOY_POLICIES)[number];

// --- Auto Scaling ---------------------------------------------------------------------------

export const LAUNCH_TRANSITION = "autoscaling:EC2_INSTANCE_LAUNCHING";
export const TERMINATE_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING";
/** Lifecycle states in which a launch hook holds an instance (in the group, or in its warm pool). */
export const WAITING_STATES: ReadonlySet<string> = new Set(["Pending:Wait", "Warmed:Pending:Wait"]);
/** Tag Auto Scaling puts on every instance it launches. */
export const GROUP_TAG = "aws:autoscaling:groupName";
/** CodeDeploy installs its own launch hook on a group, named with this prefix and the deployment group. */
export const CODEDEPLOY_HOOK_PREFIX = "CodeDeploy-managed-automatic-launch-deployment-hook-";
/** The documented default heartbeat timeout of a lifecycle hook, in seconds. */
export const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 3600;
/**
 * The description Auto Scaling gives the activity that launched an instance: "Launching a new EC2
 * instance: i-...", "... into warm pool: i-..." or "... from warm pool: i-..."
 * (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html).
 */
export const LAUNCH_ACTIVITY_PREFIX = "Launching a new EC2 instance";

// --- EventBridge ----------------------------------------------------------------------------

export const AUTOSCALING_SOURCE = "aws.autoscaling";
export const CODEDEPLOY_SOURCE = "aws.codedeploy";
export const LAUNCH_DETAIL_TYPE = "EC2 Instance-launch Lifecycle Action";
export const DEPLOYMENT_DETAIL_TYPE = "CodeDeploy Deployment State-change Notification";
export const SSM_SOURCE = "aws.ssm";
/**
 * One command's invocation on one instance changed status (detail: command-id, document-name,
 * instance-id, requested-date-time, status). Best effort, no output and no comment:
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html
 */
export const COMMAND_INVOCATION_DETAIL_TYPE = "EC2 Command Invocation Status-change Notification";
/** The statuses with which an invocation ends, as the event's `status` gives them. */
export const COMMAND_END_STATUSES = [
  "Success",
  "Failed",
  "TimedOut",
  "Cancelled",
  "Undeliverable",
  "Terminated",
  "Delivery Timed Out",
  "Execution Timed Out",
] as const;

// --- Metrics --------------------------------------------------------------------------------

/** Every metric the functions emit (Powertools EMF, namespace METRICS_NAMESPACE). */
export const METRIC = {
  launchContinued: "LaunchContinued",
  launchAbandoned: "LaunchAbandoned",
  launchAlreadyCompleted: "LaunchAlreadyCompleted",
  launchSkipped: "LaunchSkipped",
  launchPending: "LaunchPending",
  /** Let in (CONTINUE) without a verified agent: a fault that was not the instance's own, or an open breaker. */
  launchFailedOpen: "LaunchFailedOpen",
  /** A group's breaker opened: its launches are let in whatever their failure. */
  breakerOpened: "LaunchBreakerOpened",
  timeToComplete: "TimeToComplete",
  outdatedAgentInAmi: "OutdatedAgentInAmi",
  heartbeats: "LifecycleHeartbeats",
  installsSent: "AgentInstallsSent",
  installsSucceeded: "AgentInstallsSucceeded",
  installsFailed: "AgentInstallsFailed",
  verified: "AgentVerified",
  verificationsFailed: "AgentVerificationsFailed",
  agentUpgraded: "AgentUpgraded",
  redeployCreated: "RedeployCreated",
  redeploySkipped: "RedeploySkipped",
  redeployGaveUp: "RedeployGaveUp",
  redeployDryRun: "RedeployDryRun",
  redeployDeferred: "RedeployDeferred",
  sweepExamined: "SweepExamined",
  sweepStale: "SweepStale",
  sweepEnqueued: "SweepEnqueued",
} as const;
export type MetricName = (typeof METRIC)[keyof typeof METRIC];
