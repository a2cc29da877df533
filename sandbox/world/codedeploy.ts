import { CODEDEPLOY_HOOK_PREFIX, LAUNCH_TRANSITION } from "../../functions/core/contract.js";
import { deploymentStateEvent } from "../events/shapes.js";
import type { LifecycleAction } from "./auto-scaling.js";
import type { Instance } from "./instances.js";
import { compareVersions, type Distribution } from "./random.js";
import { ACCOUNT_ID, AwsServiceError } from "./service-error.js";
import type { World } from "./world.js";

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

/** The message CodeDeploy backfills when no agent picked an event up in time (aws/aws-codedeploy-agent#307). */
export const AGENT_NOT_RECEIVING_MESSAGE =
  "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy agent logs on your host and make sure the agent is running and can connect to the CodeDeploy server.";
/** The message of an event that was running when the agent restarted (aws/aws-codedeploy-agent#402). */
export const AGENT_RESTART_MESSAGE = "Failing in-progress lifecycle event after an agent restart";
export const HEALTH_CONSTRAINTS_MESSAGE =
  "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems.";

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
}

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
}

const ACTIVE = new Set<DeploymentStatus>(["Created", "Queued", "InProgress", "Baking", "Ready"]);

const DEFAULT_EVENT_SECONDS: Record<LifecycleEventName, Distribution> = {
  ApplicationStop: { min: 0.5, max: 1.5 },
  DownloadBundle: { min: 2, max: 5 },
  BeforeInstall: { min: 1, max: 3 },
  Install: { min: 2, max: 4 },
  AfterInstall: { min: 1, max: 3 },
  ApplicationStart: { min: 3, max: 8 },
  ValidateService: { min: 2, max: 6 },
};

export function revisionKey(revision: RevisionLocation | undefined): string {
  if (!revision) return "";
  const s3 = revision.s3Location;
  if (s3) return `s3://${s3.bucket}/${s3.key}#${s3.version ?? ""}${s3.eTag ?? ""}`;
  if (revision.gitHubLocation)
    return `github:${revision.gitHubLocation.repository}@${revision.gitHubLocation.commitId}`;
  return JSON.stringify(revision);
}

interface RunningEvent {
  interrupt(reason: "restart" | "shutdown"): void;
}

/**
 * CodeDeploy for EC2/on-premises in-place deployments: applications, deployment groups linked to Auto
 * Scaling groups (with CodeDeploy's managed launch hook), deployments whose lifecycle events the
 * instance's agent must pick up and run.
 */
export class CodeDeployModel {
  readonly applications = new Map<string, Application>();
  readonly groups = new Map<string, DeploymentGroup>();
  readonly deployments = new Map<string, Deployment>();
  /** Deployment ids in creation order (ListDeployments answers newest first). */
  readonly order: string[] = [];
  private readonly brokenRevisions = new Set<string>();
  private readonly unfinished = new Set<string>();
  private readonly running = new Map<string, RunningEvent>();
  private readonly instanceRevisions = new Map<string, string>();

  constructor(
    private readonly world: World,
    readonly options: CodeDeployOptions = {},
  ) {
    world.autoScaling.onLaunchAction((action, instance) => this.onLaunchAction(action, instance));
  }

  get agentWaitMs(): number {
    return (this.options.agentWaitSeconds ?? 300) * 1000;
  }

  get fixedInAgentVersion(): string {
    return this.options.fixedInAgentVersion ?? "1.8.1";
  }

  private groupKey(applicationName: string, groupName: string): string {
    return `${applicationName}/${groupName}`;
  }

  createApplication(name: string): Application {
    if (this.applications.has(name)) {
      throw new AwsServiceError(
        "ApplicationAlreadyExistsException",
        `An application with the name ${name} already exists.`,
      );
    }
    const application = {
      name,
      id: this.world.rng.fork(`application:${name}`).uuid(),
      createdAt: this.world.now(),
    };
    this.applications.set(name, application);
    return application;
  }

  application(name: string | undefined): Application {
    if (!name) throw new AwsServiceError("ApplicationNameRequiredException", "Application name is required");
    const application = this.applications.get(name);
    if (!application)
      throw new AwsServiceError("ApplicationDoesNotExistException", `No application found for name: ${name}`);
    return application;
  }

  createDeploymentGroup(spec: {
    applicationName: string;
    name: string;
    autoScalingGroups: string[];
    deploymentConfigName?: string;
    autoRollbackConfiguration?: { enabled: boolean; events: string[] };
    /** A revision that deployed successfully before the scenario starts (what launches get). */
    lastSuccessfulRevision?: RevisionLocation;
  }): DeploymentGroup {
    this.application(spec.applicationName);
    const key = this.groupKey(spec.applicationName, spec.name);
    if (this.groups.has(key)) {
      throw new AwsServiceError(
        "DeploymentGroupAlreadyExistsException",
        `A deployment group with the name ${spec.name} already exists.`,
      );
    }
    const group: DeploymentGroup = {
      applicationName: spec.applicationName,
      name: spec.name,
      id: this.world.rng.fork(`deployment-group:${key}`).uuid(),
      autoScalingGroups: spec.autoScalingGroups,
      deploymentConfigName: spec.deploymentConfigName ?? "CodeDeployDefault.OneAtATime",
      autoRollbackConfiguration: spec.autoRollbackConfiguration,
      serviceRoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/CodeDeployServiceRole`,
      targetRevision: spec.lastSuccessfulRevision,
    };
    this.groups.set(key, group);
    for (const asg of spec.autoScalingGroups) {
      this.world.autoScaling.putLifecycleHook({
        groupName: asg,
        hookName: `${CODEDEPLOY_HOOK_PREFIX}${spec.name}`,
        transition: LAUNCH_TRANSITION,
        heartbeatTimeout: this.options.managedHookHeartbeatTimeout ?? 600,
        defaultResult: "ABANDON",
      });
    }
    if (spec.lastSuccessfulRevision) {
      const past = this.world.now() - 86_400_000;
      const deployment = this.newDeployment(group, {
        revision: spec.lastSuccessfulRevision,
        creator: "user",
        description: "Deployed before the sandbox started",
      });
      deployment.status = "Succeeded";
      this.unfinished.delete(deployment.id);
      deployment.createTime = past;
      deployment.startTime = past;
      deployment.completeTime = past + 120_000;
      group.lastSuccessfulDeploymentId = deployment.id;
      group.lastAttemptedDeploymentId = deployment.id;
      for (const asg of spec.autoScalingGroups) {
        for (const id of this.world.autoScaling.group(asg).instances)
          this.instanceRevisions.set(id, revisionKey(deployment.revision));
      }
    }
    return group;
  }

  deploymentGroup(applicationName: string | undefined, groupName: string | undefined): DeploymentGroup {
    this.application(applicationName);
    if (!groupName)
      throw new AwsServiceError("DeploymentGroupNameRequiredException", "Deployment Group name is required");
    const group = this.groups.get(this.groupKey(applicationName!, groupName));
    if (!group) {
      throw new AwsServiceError(
        "DeploymentGroupDoesNotExistException",
        `No Deployment Group found for name: ${groupName}`,
      );
    }
    return group;
  }

  /** Makes deployments of this revision fail their ValidateService script (an application bug). */
  markRevisionBroken(revision: RevisionLocation): void {
    this.brokenRevisions.add(revisionKey(revision));
  }

  deployment(id: string | undefined): Deployment {
    if (!id) throw new AwsServiceError("DeploymentIdRequiredException", "Deployment Id is required");
    if (!/^d-[A-Z0-9]{9}$/.test(id))
      throw new AwsServiceError(
        "InvalidDeploymentIdException",
        `Specified DeploymentId is not in the valid format: ${id}`,
      );
    const deployment = this.deployments.get(id);
    if (!deployment)
      throw new AwsServiceError("DeploymentDoesNotExistException", `Deployment ${id} does not exist`);
    return deployment;
  }

  /** Deployments not finished yet (Created, Queued, InProgress...), for cheap "anything running?" checks. */
  active(): Deployment[] {
    return [...this.unfinished].map((id) => this.deployments.get(id)!);
  }

  activeDeployment(group: DeploymentGroup): Deployment | undefined {
    return this.active().find(
      (deployment) =>
        deployment.applicationName === group.applicationName &&
        deployment.deploymentGroupName === group.name &&
        ACTIVE.has(deployment.status),
    );
  }

  /** CreateDeployment; `id` forces the deployment id (a replay of a real deployment's events). */
  createDeployment(input: CreateDeploymentInput, creator = "user", id?: string): Deployment {
    const group = this.deploymentGroup(input.applicationName, input.deploymentGroupName);
    const revision = input.revision ?? group.targetRevision;
    if (!revision) throw new AwsServiceError("RevisionRequiredException", "Revision must be specified");
    if (!revision.revisionType)
      throw new AwsServiceError("InvalidRevisionException", "Revision type must be specified");
    if ((input.description ?? "").length > 512) {
      throw new AwsServiceError(
        "DescriptionTooLongException",
        "The description is too long. The description must be 512 characters or less.",
      );
    }
    const fileExistsBehavior = input.fileExistsBehavior ?? "DISALLOW";
    if (!["DISALLOW", "OVERWRITE", "RETAIN"].includes(fileExistsBehavior)) {
      throw new AwsServiceError(
        "InvalidFileExistsBehaviorException",
        `Invalid file exists behavior: ${fileExistsBehavior}`,
      );
    }
    // "Maximum number of concurrent deployments to a deployment group: 1" (limits page).
    const active = this.activeDeployment(group);
    if (active) {
      throw new AwsServiceError(
        "DeploymentLimitExceededException",
        `The Deployment Group '${group.name}' already has an active Deployment '${active.id}'`,
      );
    }
    const deployment = this.newDeployment(group, {
      id,
      revision,
      creator,
      description: input.description,
      deploymentConfigName: input.deploymentConfigName,
      ignoreApplicationStopFailures: input.ignoreApplicationStopFailures,
      fileExistsBehavior,
      updateOutdatedInstancesOnly: input.updateOutdatedInstancesOnly,
      autoRollbackConfiguration:
        input.autoRollbackConfiguration?.enabled !== undefined
          ? {
              enabled: input.autoRollbackConfiguration.enabled,
              events: input.autoRollbackConfiguration.events ?? [],
            }
          : group.autoRollbackConfiguration,
    });
    const instances = group.autoScalingGroups
      .flatMap((name) => [...(this.world.autoScaling.groups.get(name)?.instances ?? [])])
      .map((id) => this.world.instance(id))
      .filter((instance) => instance.lifecycleState === "InService")
      .filter(
        (instance) =>
          !deployment.updateOutdatedInstancesOnly ||
          this.instanceRevisions.get(instance.id) !== revisionKey(revision),
      );
    deployment.targets = instances.map((instance) => this.newTarget(instance.id));
    group.targetRevision = revision;
    this.start(deployment);
    return deployment;
  }

  private newDeployment(
    group: DeploymentGroup,
    fields: Partial<Deployment> & { revision: RevisionLocation; creator: string },
  ): Deployment {
    const id = fields.id ?? `d-${this.world.rng.fork(`deployment:${this.order.length}`).alphanumeric(9)}`;
    const previous = group.lastSuccessfulDeploymentId
      ? this.deployments.get(group.lastSuccessfulDeploymentId)
      : undefined;
    const deployment: Deployment = {
      applicationName: group.applicationName,
      deploymentGroupName: group.name,
      deploymentConfigName: fields.deploymentConfigName ?? group.deploymentConfigName,
      previousRevision: previous?.revision,
      status: "Created",
      createTime: this.world.now(),
      ignoreApplicationStopFailures: fields.ignoreApplicationStopFailures ?? false,
      fileExistsBehavior: fields.fileExistsBehavior ?? "DISALLOW",
      updateOutdatedInstancesOnly: fields.updateOutdatedInstancesOnly ?? false,
      autoRollbackConfiguration: fields.autoRollbackConfiguration ?? group.autoRollbackConfiguration,
      targets: [],
      // Members given as undefined keep the defaults above.
      ...(Object.fromEntries(
        Object.entries(fields).filter(([, value]) => value !== undefined),
      ) as typeof fields),
      id,
    };
    this.deployments.set(id, deployment);
    this.order.push(id);
    this.unfinished.add(id);
    this.world.trace.record({
      at: this.world.now(),
      kind: "deployment.created",
      deploymentId: id,
      message: `${id} created by ${deployment.creator} in ${group.applicationName}/${group.name}${deployment.description ? ` (${deployment.description})` : ""}`,
      data: {
        creator: deployment.creator,
        description: deployment.description,
        group: `${group.applicationName}/${group.name}`,
      },
    });
    return deployment;
  }

  private newTarget(instanceId: string): DeploymentTarget {
    return {
      instanceId,
      status: "Pending",
      lastUpdatedAt: this.world.now(),
      lifecycleEvents: LIFECYCLE_EVENTS.map((name) => ({
        lifecycleEventName: name,
        status: "Pending" as const,
      })),
    };
  }

  private onLaunchAction(action: LifecycleAction, instance: Instance): void {
    if (!action.hookName.startsWith(CODEDEPLOY_HOOK_PREFIX)) return;
    const groupName = action.hookName.slice(CODEDEPLOY_HOOK_PREFIX.length);
    const group = [...this.groups.values()].find(
      (candidate) => candidate.name === groupName && candidate.autoScalingGroups.includes(action.groupName),
    );
    const delay = this.world.rng
      .fork(`launch-deployment:${action.token}`)
      .draw(this.options.launchDeploymentDelaySeconds ?? { min: 1, max: 4 });
    this.world.scheduler.after(delay * 1000, () => {
      if (action.completed) return;
      const last = group?.lastSuccessfulDeploymentId
        ? this.deployments.get(group.lastSuccessfulDeploymentId)
        : undefined;
      if (!group || !last?.revision) {
        // Nothing deployed successfully yet: CodeDeploy lets the instance in without a deployment.
        this.completeLaunchAction(action, "CONTINUE");
        return;
      }
      const deployment = this.newDeployment(group, {
        revision: last.revision,
        creator: "autoscaling",
        launchAction: action,
      });
      deployment.targets = [this.newTarget(instance.id)];
      this.start(deployment);
    });
  }

  private completeLaunchAction(action: LifecycleAction, result: "CONTINUE" | "ABANDON"): void {
    try {
      this.world.autoScaling.completeLifecycleAction(
        { groupName: action.groupName, hookName: action.hookName, token: action.token, result },
        "codedeploy",
      );
    } catch (error) {
      // The action already ended (timeout, scale-in): nothing left to complete.
      if (!(error instanceof AwsServiceError && error.code === "ValidationError")) throw error;
    }
  }

  private start(deployment: Deployment): void {
    const delay = this.world.rng.fork(`start:${deployment.id}`).draw({ min: 0.5, max: 2 }) * 1000;
    this.world.scheduler.after(delay, () => this.world.scheduler.run(() => this.run(deployment)));
  }

  private async run(deployment: Deployment): Promise<void> {
    const group = this.groups.get(this.groupKey(deployment.applicationName, deployment.deploymentGroupName))!;
    deployment.status = "InProgress";
    deployment.startTime = this.world.now();
    group.lastAttemptedDeploymentId = deployment.id;
    this.publish(deployment, "START");
    let heartbeat: { cancel(): void } | undefined;
    if (deployment.launchAction) {
      const action = deployment.launchAction;
      heartbeat = this.world.scheduler.every((this.options.managedHookHeartbeatSeconds ?? 300) * 1000, () => {
        if (action.completed) return;
        try {
          this.world.autoScaling.recordHeartbeat({
            groupName: action.groupName,
            hookName: action.hookName,
            token: action.token,
          });
        } catch (error) {
          if (!(error instanceof AwsServiceError)) throw error;
        }
      });
    }
    if (deployment.targets.length === 0) {
      this.complete(deployment, {
        code: "NO_INSTANCES",
        message:
          "The deployment failed because no instances were found for your deployment group. Check your deployment group settings to make sure the tags for your Amazon EC2 instances or Auto Scaling groups correctly identify the instances you want to deploy to, and then try again.",
      });
      return;
    }
    const oneAtATime = deployment.deploymentConfigName === "CodeDeployDefault.OneAtATime";
    if (oneAtATime) {
      for (const target of deployment.targets) {
        const status = await this.runTarget(deployment, target);
        if (status === "Failed") {
          for (const rest of deployment.targets) if (rest.status === "Pending") this.skipTarget(rest);
          break;
        }
      }
    } else {
      await Promise.all(deployment.targets.map((target) => this.runTarget(deployment, target)));
    }
    heartbeat?.cancel();
    const failed = deployment.targets.some((target) => target.status === "Failed");
    this.complete(
      deployment,
      failed ? { code: "HEALTH_CONSTRAINTS", message: HEALTH_CONSTRAINTS_MESSAGE } : undefined,
    );
  }

  private skipTarget(target: DeploymentTarget): void {
    target.status = "Skipped";
    target.lastUpdatedAt = this.world.now();
    for (const event of target.lifecycleEvents) event.status = "Skipped";
  }

  private agentRunning(instance: Instance): boolean {
    return !instance.terminated && instance.agent.running;
  }

  private async runTarget(
    deployment: Deployment,
    target: DeploymentTarget,
  ): Promise<DeploymentTarget["status"]> {
    const instance = this.world.instance(target.instanceId);
    const rng = this.world.rng.fork(`target:${deployment.id}:${instance.id}`);
    target.status = "InProgress";
    target.lastUpdatedAt = this.world.now();
    this.publish(deployment, "START", instance.id);
    for (const [index, event] of target.lifecycleEvents.entries()) {
      // The clock for an event starts when the previous one ends (limits page: five minutes).
      const waitDeadline = this.world.now() + this.agentWaitMs;
      let outcome: { status: "Succeeded" | "Failed"; diagnostics: Diagnostics } | undefined;
      while (!outcome) {
        const picked = await instance.changed.waitFor(
          this.world.scheduler,
          () => this.agentRunning(instance),
          Math.max(0, waitDeadline - this.world.now()),
        );
        if (!picked) {
          outcome = {
            status: "Failed",
            diagnostics: {
              errorCode: "UnknownError",
              scriptName: "",
              message: AGENT_NOT_RECEIVING_MESSAGE,
              logTail: "",
            },
          };
          break;
        }
        await this.world.scheduler.sleep(
          rng.draw(this.options.agentPickupSeconds ?? { min: 1, max: 4 }) * 1000,
        );
        if (!this.agentRunning(instance)) continue;
        outcome = await this.runEvent(
          deployment,
          instance,
          event,
          rng.draw(
            this.options.eventSeconds?.[event.lifecycleEventName] ??
              DEFAULT_EVENT_SECONDS[event.lifecycleEventName],
          ) * 1000,
        );
      }
      event.endTime = this.world.now();
      event.startTime ??= event.endTime;
      event.status = outcome.status;
      event.diagnostics = outcome.diagnostics;
      target.lastUpdatedAt = this.world.now();
      if (outcome.status === "Failed") {
        for (const rest of target.lifecycleEvents.slice(index + 1)) rest.status = "Skipped";
        target.status = "Failed";
        this.world.trace.record({
          at: this.world.now(),
          kind: "deployment.target-failed",
          deploymentId: deployment.id,
          instanceId: instance.id,
          groupName: instance.groupName ?? undefined,
          message: `${deployment.id} on ${instance.id}: ${event.lifecycleEventName} ${outcome.diagnostics.errorCode}: ${outcome.diagnostics.message}`,
          data: { lifecycleEvent: event.lifecycleEventName, errorCode: outcome.diagnostics.errorCode },
        });
        this.publish(deployment, "FAILURE", instance.id);
        return target.status;
      }
    }
    target.status = "Succeeded";
    this.instanceRevisions.set(instance.id, revisionKey(deployment.revision));
    this.publish(deployment, "SUCCESS", instance.id);
    return target.status;
  }

  private async runEvent(
    deployment: Deployment,
    instance: Instance,
    event: LifecycleEventRecord,
    durationMs: number,
  ): Promise<{ status: "Succeeded" | "Failed"; diagnostics: Diagnostics }> {
    event.status = "InProgress";
    event.startTime = this.world.now();
    if (instance.faults.agentCrashesOnLifecycleEvent) {
      this.world.scheduler.after(1000, () => this.world.ssm.crashAgent(instance));
    }
    const agentVersion = instance.agent.version ?? "0";
    const interruption = await new Promise<"done" | "restart" | "shutdown">((resolve) => {
      const timer = this.world.scheduler.after(durationMs, () => {
        this.running.delete(instance.id);
        resolve("done");
      });
      this.running.set(instance.id, {
        interrupt: (reason) => {
          timer.cancel();
          this.running.delete(instance.id);
          resolve(reason);
        },
      });
    });
    if (interruption === "restart") {
      return {
        status: "Failed",
        diagnostics: {
          errorCode: "UnknownError",
          scriptName: "",
          message: AGENT_RESTART_MESSAGE,
          logTail: "",
        },
      };
    }
    if (interruption === "shutdown") {
      // The agent went away mid-event: CodeDeploy only notices when its wait for the agent runs out.
      await this.world.scheduler.sleep(this.agentWaitMs);
      return {
        status: "Failed",
        diagnostics: {
          errorCode: "UnknownError",
          scriptName: "",
          message: AGENT_NOT_RECEIVING_MESSAGE,
          logTail: "",
        },
      };
    }
    if (
      event.lifecycleEventName === "ApplicationStart" &&
      compareVersions(agentVersion, this.fixedInAgentVersion) < 0
    ) {
      return {
        status: "Failed",
        diagnostics: {
          errorCode: "ScriptFailed",
          scriptName: "scripts/start_tomcat.sh",
          message:
            "Script at specified location: scripts/start_tomcat.sh run as user root failed with exit code 1",
          logTail:
            '[stderr]Job for tomcat.service failed because the control process exited with error code.\n[stderr]See "systemctl status tomcat.service" and "journalctl -xe" for details.',
        },
      };
    }
    if (
      event.lifecycleEventName === "ValidateService" &&
      this.brokenRevisions.has(revisionKey(deployment.revision))
    ) {
      return {
        status: "Failed",
        diagnostics: {
          errorCode: "ScriptFailed",
          scriptName: "scripts/validate_service.sh",
          message:
            "Script at specified location: scripts/validate_service.sh run as user root failed with exit code 7",
          logTail:
            "[stdout]curl: (7) Failed to connect to localhost port 8080 after 0 ms: Connection refused",
        },
      };
    }
    return {
      status: "Succeeded",
      diagnostics: { errorCode: "Success", scriptName: "", message: "Succeeded", logTail: "" },
    };
  }

  /** The agent on the instance stopped: a restart fails the running event at once. */
  agentStopped(instance: Instance, reason: "restart" | "shutdown"): void {
    this.running.get(instance.id)?.interrupt(reason);
  }

  agentStarted(instance: Instance): void {
    instance.changed.notify();
  }

  private complete(deployment: Deployment, error?: { code: string; message: string }): void {
    const group = this.groups.get(this.groupKey(deployment.applicationName, deployment.deploymentGroupName))!;
    deployment.completeTime = this.world.now();
    deployment.status = error ? "Failed" : "Succeeded";
    this.unfinished.delete(deployment.id);
    deployment.errorInformation = error;
    if (!error) group.lastSuccessfulDeploymentId = deployment.id;
    this.world.trace.record({
      at: this.world.now(),
      kind: error ? "deployment.failed" : "deployment.succeeded",
      deploymentId: deployment.id,
      message: `${deployment.id} (${deployment.creator}) ${deployment.status}${error ? `: ${error.code}` : ""}`,
      data: {
        creator: deployment.creator,
        description: deployment.description,
        group: `${deployment.applicationName}/${deployment.deploymentGroupName}`,
      },
    });
    this.publish(deployment, error ? "FAILURE" : "SUCCESS");
    if (deployment.launchAction)
      this.completeLaunchAction(deployment.launchAction, error ? "ABANDON" : "CONTINUE");
    const rollback = deployment.autoRollbackConfiguration;
    const previous = group.lastSuccessfulDeploymentId
      ? this.deployments.get(group.lastSuccessfulDeploymentId)
      : undefined;
    if (
      error &&
      rollback?.enabled &&
      rollback.events.includes("DEPLOYMENT_FAILURE") &&
      deployment.creator !== "codeDeployRollback" &&
      deployment.creator !== "autoscaling" &&
      previous?.revision
    ) {
      const rollbackDeployment = this.newDeployment(group, {
        revision: previous.revision,
        creator: "codeDeployRollback",
        rollbackInfo: { rollbackTriggeringDeploymentId: deployment.id },
      });
      deployment.rollbackInfo = {
        rollbackDeploymentId: rollbackDeployment.id,
        rollbackMessage: `Automatic rollback triggered: deployment ${deployment.id} failed.`,
      };
      rollbackDeployment.targets = deployment.targets.map((target) => this.newTarget(target.instanceId));
      this.start(rollbackDeployment);
    }
  }

  private publish(deployment: Deployment, state: "START" | "SUCCESS" | "FAILURE", instanceId?: string): void {
    const group = this.groups.get(this.groupKey(deployment.applicationName, deployment.deploymentGroupName))!;
    this.world.publishEvent(
      deploymentStateEvent({
        id: this.world.rng.fork(`event:${deployment.id}:${state}:${instanceId ?? ""}`).uuid(),
        at: this.world.now(),
        region: this.world.region,
        applicationName: deployment.applicationName,
        deploymentGroupName: deployment.deploymentGroupName,
        deploymentGroupId: group.id,
        deploymentId: deployment.id,
        state,
        instanceId,
      }),
    );
  }
}
