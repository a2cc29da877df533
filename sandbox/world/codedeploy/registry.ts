import { deploymentStateEvent } from "../../events/shapes.js";
import type { Distribution } from "../random.js";
import { ACCOUNT_ID, AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import { ONE_AT_A_TIME } from "./deployment-configs.js";
import {
  type Application,
  type Deployment,
  type DeploymentGroup,
  type DeploymentStatus,
  type DeploymentStyle,
  type DeploymentTarget,
  IN_PLACE,
  LIFECYCLE_EVENTS,
  type LifecycleEventName,
  type RevisionLocation,
  revisionKey,
} from "./records.js";

const ACTIVE = new Set<DeploymentStatus>(["Created", "Queued", "InProgress", "Baking", "Ready"]);

/**
 * CodeDeploy's records and their lookups as the API answers them: applications, deployment groups,
 * deployments (with the unfinished ones at hand), the revision each instance last got, and the
 * deployment state-change events published on EventBridge.
 */
export class CodeDeployRegistry {
  readonly applications = new Map<string, Application>();
  readonly groups = new Map<string, DeploymentGroup>();
  readonly deployments = new Map<string, Deployment>();
  /** Deployment ids in creation order (ListDeployments answers newest first). */
  readonly order: string[] = [];
  private readonly brokenRevisions = new Set<string>();
  private readonly slowRevisions = new Map<string, Partial<Record<LifecycleEventName, Distribution>>>();
  private readonly unfinished = new Set<string>();
  private readonly instanceRevisions = new Map<string, string>();

  constructor(private readonly world: WorldServices) {}

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

  /** Registers a new deployment group of an existing application. */
  addDeploymentGroup(spec: {
    applicationName: string;
    name: string;
    autoScalingGroups: string[];
    deploymentConfigName?: string;
    autoRollbackConfiguration?: { enabled: boolean; events: string[] };
    targetRevision?: RevisionLocation;
    deploymentStyle?: DeploymentStyle;
  }): DeploymentGroup {
    this.application(spec.applicationName);
    const key = groupKey(spec.applicationName, spec.name);
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
      deploymentConfigName: spec.deploymentConfigName ?? ONE_AT_A_TIME,
      autoRollbackConfiguration: spec.autoRollbackConfiguration,
      serviceRoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/CodeDeployServiceRole`,
      targetRevision: spec.targetRevision,
      deploymentStyle: spec.deploymentStyle ?? IN_PLACE,
    };
    this.groups.set(key, group);
    return group;
  }

  deploymentGroup(applicationName: string | undefined, groupName: string | undefined): DeploymentGroup {
    this.application(applicationName);
    if (!groupName)
      throw new AwsServiceError("DeploymentGroupNameRequiredException", "Deployment Group name is required");
    const group = this.groups.get(groupKey(applicationName!, groupName));
    if (!group) {
      throw new AwsServiceError(
        "DeploymentGroupDoesNotExistException",
        `No Deployment Group found for name: ${groupName}`,
      );
    }
    return group;
  }

  /** The deployment group a deployment belongs to. */
  groupOf(deployment: Deployment): DeploymentGroup {
    return this.groups.get(groupKey(deployment.applicationName, deployment.deploymentGroupName))!;
  }

  /** Makes deployments of this revision fail their ValidateService script (an application bug). */
  markRevisionBroken(revision: RevisionLocation): void {
    this.brokenRevisions.add(revisionKey(revision));
  }

  isRevisionBroken(revision: RevisionLocation | undefined): boolean {
    return this.brokenRevisions.has(revisionKey(revision));
  }

  /** Makes deployments of this revision take this long in these lifecycle events (a large bundle, slow scripts). */
  markRevisionSlow(
    revision: RevisionLocation,
    eventSeconds: Partial<Record<LifecycleEventName, Distribution>>,
  ): void {
    this.slowRevisions.set(revisionKey(revision), eventSeconds);
  }

  eventSecondsOf(revision: RevisionLocation | undefined, name: LifecycleEventName): Distribution | undefined {
    return this.slowRevisions.get(revisionKey(revision))?.[name];
  }

  /** The revision an instance last deployed successfully, as `revisionKey` writes it. */
  revisionOn(instanceId: string): string | undefined {
    return this.instanceRevisions.get(instanceId);
  }

  recordRevision(instanceId: string, revision: RevisionLocation | undefined): void {
    this.instanceRevisions.set(instanceId, revisionKey(revision));
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

  /** A deployment ended: it no longer counts as active. */
  markFinished(deployment: Deployment): void {
    this.unfinished.delete(deployment.id);
  }

  newDeployment(
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

  newTarget(instanceId: string): DeploymentTarget {
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

  /** Publishes a deployment (or, with `instanceId`, an instance) state-change event. */
  publish(deployment: Deployment, state: "START" | "SUCCESS" | "FAILURE", instanceId?: string): void {
    const group = this.groupOf(deployment);
    this.world.publisher.publish(
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

function groupKey(applicationName: string, groupName: string): string {
  return `${applicationName}/${groupName}`;
}
