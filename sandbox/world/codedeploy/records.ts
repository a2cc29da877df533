import type { LifecycleAction } from "../lifecycle-action.js";
import type { Distribution } from "../random.js";

// What CodeDeploy keeps for EC2/on-premises deployments: applications, deployment groups, deployments
// with one target per instance and the lifecycle events each target runs, and the model's settings.

export const LIFECYCLE_EVENTS = [
  "ApplicationStop",
  "DownloadBundle",
  "BeforeInstall",
  "Install",
  "AfterInstall",
  "ApplicationStart",
  "ValidateService",
] as const;
export type LifecycleEventName = (typeof LIFECYCLE_EVENTS)[number];

export interface CodeDeployOptions {
  /** The first agent version with the fix; older agents fail ApplicationStart (the tomcat story). */
  fixedInAgentVersion?: string;
  /**
   * AWS seconds CodeDeploy waits for an agent to pick up a lifecycle event before it fails it with
   * UnknownError. The limits page says 5 minutes (300); the Auto Scaling troubleshooting page says one
   * hour (3600): https://docs.aws.amazon.com/codedeploy/latest/userguide/limits.html and
   * https://docs.aws.amazon.com/codedeploy/latest/userguide/troubleshooting-auto-scaling.html
   */
  agentWaitSeconds?: number;
  /** AWS seconds a running agent takes to pick up a pending event (its poll). */
  agentPickupSeconds?: Distribution;
  /** AWS seconds each lifecycle event's scripts run. */
  eventSeconds?: Partial<Record<LifecycleEventName, Distribution>>;
  /** Settings of the managed launch hook CodeDeploy puts on the group (undocumented by AWS). */
  managedHookHeartbeatTimeout?: number;
  /** CodeDeploy heartbeats its launch hook while the launch deployment runs ("every five minutes"). */
  managedHookHeartbeatSeconds?: number;
  /** AWS seconds between a managed hook notification and the launch deployment's creation. */
  launchDeploymentDelaySeconds?: Distribution;
  /**
   * AWS seconds between a failure and the creation of its automatic rollback (default 0: at once).
   * A later rollback is what a remediation acting on the failure can race.
   */
  rollbackDelaySeconds?: Distribution;
  /** The account's concurrent deployments quota (default 1,000; quota.ts). */
  maxConcurrentDeployments?: number;
}

/** How a deployment group deploys: in place, or blue/green onto a replacement environment. */
export interface DeploymentStyle {
  deploymentType: "IN_PLACE" | "BLUE_GREEN";
  deploymentOption: "WITH_TRAFFIC_CONTROL" | "WITHOUT_TRAFFIC_CONTROL";
}

export const IN_PLACE: DeploymentStyle = {
  deploymentType: "IN_PLACE",
  deploymentOption: "WITHOUT_TRAFFIC_CONTROL",
};

export interface RevisionLocation {
  revisionType?: string;
  s3Location?: { bucket?: string; key?: string; bundleType?: string; version?: string; eTag?: string };
  gitHubLocation?: { repository?: string; commitId?: string };
  string?: { content?: string; sha256?: string };
  appSpecContent?: { content?: string; sha256?: string };
}

export interface Diagnostics {
  errorCode: string;
  scriptName: string;
  message: string;
  logTail: string;
}

export interface LifecycleEventRecord {
  lifecycleEventName: LifecycleEventName;
  status: "Pending" | "InProgress" | "Succeeded" | "Failed" | "Skipped" | "Unknown";
  startTime?: number;
  endTime?: number;
  diagnostics?: Diagnostics;
}

export interface DeploymentTarget {
  instanceId: string;
  status: "Pending" | "InProgress" | "Succeeded" | "Failed" | "Skipped" | "Unknown" | "Ready";
  lastUpdatedAt: number;
  lifecycleEvents: LifecycleEventRecord[];
  /** Blue/green deployments label their replacement instances Green. */
  instanceLabel?: "Blue" | "Green";
}

export interface Application {
  name: string;
  id: string;
  createdAt: number;
}

export interface DeploymentGroup {
  applicationName: string;
  name: string;
  id: string;
  autoScalingGroups: string[];
  deploymentConfigName: string;
  autoRollbackConfiguration?: { enabled: boolean; events: string[] };
  serviceRoleArn: string;
  targetRevision?: RevisionLocation;
  lastSuccessfulDeploymentId?: string;
  lastAttemptedDeploymentId?: string;
  deploymentStyle: DeploymentStyle;
}

export type DeploymentStatus =
  | "Created"
  | "Queued"
  | "InProgress"
  | "Baking"
  | "Succeeded"
  | "Failed"
  | "Stopped"
  | "Ready";

export interface Deployment {
  id: string;
  applicationName: string;
  deploymentGroupName: string;
  deploymentConfigName: string;
  revision?: RevisionLocation;
  previousRevision?: RevisionLocation;
  status: DeploymentStatus;
  creator: string;
  description?: string;
  createTime: number;
  startTime?: number;
  completeTime?: number;
  errorInformation?: { code: string; message: string };
  ignoreApplicationStopFailures: boolean;
  fileExistsBehavior: string;
  updateOutdatedInstancesOnly: boolean;
  autoRollbackConfiguration?: { enabled: boolean; events: string[] };
  rollbackInfo?: {
    rollbackDeploymentId?: string;
    rollbackTriggeringDeploymentId?: string;
    rollbackMessage?: string;
  };
  targets: DeploymentTarget[];
  launchAction?: LifecycleAction;
}

export type DeploymentError = { code: string; message: string };

export interface CreateDeploymentInput {
  applicationName?: string;
  deploymentGroupName?: string;
  revision?: RevisionLocation;
  deploymentConfigName?: string;
  description?: string;
  ignoreApplicationStopFailures?: boolean;
  fileExistsBehavior?: string;
  updateOutdatedInstancesOnly?: boolean;
  autoRollbackConfiguration?: { enabled?: boolean; events?: string[] };
  /** Blue/green only: the replacement environment (DISCOVER_EXISTING names its Auto Scaling groups). */
  targetInstances?: { autoScalingGroups?: string[] };
}

export function revisionKey(revision: RevisionLocation | undefined): string {
  if (!revision) return "";
  const s3 = revision.s3Location;
  if (s3) return `s3://${s3.bucket}/${s3.key}#${s3.version ?? ""}${s3.eTag ?? ""}`;
  if (revision.gitHubLocation)
    return `github:${revision.gitHubLocation.repository}@${revision.gitHubLocation.commitId}`;
  return JSON.stringify(revision);
}
