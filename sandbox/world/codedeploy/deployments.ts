import { AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import type { DeploymentHarm } from "./harm.js";
import type { LaunchHook } from "./launch-hook.js";
import { assertBelowAccountLimit } from "./quota.js";
import {
  type CodeDeployOptions,
  type CreateDeploymentInput,
  type Deployment,
  type DeploymentGroup,
  type DeploymentStyle,
  type RevisionLocation,
  revisionKey,
} from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";
import type { DeploymentRunner } from "./runner.js";

/**
 * The CreateDeploymentGroup and CreateDeployment requests: what each checks, and what it sets going
 * (the launch hook on the groups, a deployment to the group's InService instances).
 */
export class DeploymentRequests {
  constructor(
    private readonly world: WorldServices,
    private readonly registry: CodeDeployRegistry,
    private readonly launchHook: LaunchHook,
    private readonly runner: DeploymentRunner,
    private readonly harm: DeploymentHarm,
    private readonly options: CodeDeployOptions,
  ) {}

  createDeploymentGroup(spec: {
    applicationName: string;
    name: string;
    autoScalingGroups: string[];
    deploymentConfigName?: string;
    autoRollbackConfiguration?: { enabled: boolean; events: string[] };
    /** A revision that deployed successfully before the scenario starts (what launches get). */
    lastSuccessfulRevision?: RevisionLocation;
    /** Default in place; blue/green deploys onto a replacement environment (createDeployment). */
    deploymentStyle?: DeploymentStyle;
  }): DeploymentGroup {
    const group = this.registry.addDeploymentGroup({ ...spec, targetRevision: spec.lastSuccessfulRevision });
    this.launchHook.install(group);
    if (spec.lastSuccessfulRevision) {
      const past = this.world.now() - 86_400_000;
      const deployment = this.registry.newDeployment(group, {
        revision: spec.lastSuccessfulRevision,
        creator: "user",
        description: "Deployed before the sandbox started",
      });
      deployment.status = "Succeeded";
      this.registry.markFinished(deployment);
      deployment.createTime = past;
      deployment.startTime = past;
      deployment.completeTime = past + 120_000;
      group.lastSuccessfulDeploymentId = deployment.id;
      group.lastAttemptedDeploymentId = deployment.id;
      for (const asg of spec.autoScalingGroups) {
        for (const instance of this.world.instances.inGroup(asg))
          if (!instance.terminated) this.registry.recordRevision(instance.id, deployment.revision);
      }
    }
    return group;
  }

  /**
   * CreateDeployment; `id` forces the deployment id (a replay of a real deployment's events).
   * `viaApi`: the request came over the wire, from outside the world (counted for harm).
   */
  createDeployment(
    input: CreateDeploymentInput,
    creator = "user",
    id?: string,
    from: { viaApi?: boolean } = {},
  ): Deployment {
    const group = this.registry.deploymentGroup(input.applicationName, input.deploymentGroupName);
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
    const active = this.registry.activeDeployment(group);
    if (active) {
      throw new AwsServiceError(
        "DeploymentLimitExceededException",
        `The Deployment Group '${group.name}' already has an active Deployment '${active.id}'`,
      );
    }
    assertBelowAccountLimit(this.registry, this.options);
    const deployment = this.registry.newDeployment(group, {
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
    const blueGreen = group.deploymentStyle.deploymentType === "BLUE_GREEN";
    const instances = this.targetGroups(group, input)
      .flatMap((name) => this.world.instances.inGroup(name))
      .filter((instance) => instance.lifecycleState === "InService")
      .filter(
        (instance) =>
          !deployment.updateOutdatedInstancesOnly ||
          this.registry.revisionOn(instance.id) !== revisionKey(revision),
      );
    deployment.targets = instances.map((instance) => ({
      ...this.registry.newTarget(instance.id),
      ...(blueGreen ? { instanceLabel: "Green" as const } : {}),
    }));
    group.targetRevision = revision;
    if (from.viaApi) this.harm.onRequested(deployment, group);
    this.runner.start(deployment);
    return deployment;
  }

  /**
   * The Auto Scaling groups a deployment runs on: the group's own in place; for blue/green the
   * replacement environment, the groups `targetInstances` names (DISCOVER_EXISTING). With none named,
   * the group's own stand in for the copy CodeDeploy would provision (COPY_AUTO_SCALING_GROUP), which
   * this model does not make: traffic rerouting and the original environment are not modelled.
   */
  private targetGroups(group: DeploymentGroup, input: CreateDeploymentInput): string[] {
    const replacement = input.targetInstances?.autoScalingGroups ?? [];
    return group.deploymentStyle.deploymentType === "BLUE_GREEN" && replacement.length > 0
      ? replacement
      : group.autoScalingGroups;
  }
}
