import { CODEDEPLOY_HOOK_PREFIX } from "../../functions/core/contract.js";
import type {
  CreateDeploymentInput,
  Deployment,
  DeploymentTarget,
  RevisionLocation,
} from "../world/codedeploy/records.js";
import { ACCOUNT_ID, AwsServiceError } from "../world/service-error.js";
import type { World } from "../world/world.js";
import { asNumber, asString, asStrings, type Operation } from "./operation.js";
import { paginate } from "./paginate.js";

const DEPLOYMENT_STATUSES = [
  "Created",
  "Queued",
  "InProgress",
  "Baking",
  "Succeeded",
  "Failed",
  "Stopped",
  "Ready",
];
const TARGET_STATUSES = ["Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown", "Ready"];
const PAGE_SIZE = 100;

function overview(deployment: Deployment) {
  const count = (status: string) => deployment.targets.filter((target) => target.status === status).length;
  return {
    Pending: count("Pending"),
    InProgress: count("InProgress"),
    Succeeded: count("Succeeded"),
    Failed: count("Failed"),
    Skipped: count("Skipped"),
    Ready: count("Ready"),
  };
}

/** "The content property of the appSpecContent object in the returned revision is always null." */
function returnedRevision(revision: RevisionLocation | undefined): RevisionLocation | undefined {
  if (!revision?.appSpecContent) return revision;
  return { ...revision, appSpecContent: { sha256: revision.appSpecContent.sha256 } };
}

function deploymentInfo(world: World, deployment: Deployment) {
  const group = world.codeDeploy.deploymentGroup(deployment.applicationName, deployment.deploymentGroupName);
  return {
    applicationName: deployment.applicationName,
    deploymentGroupName: deployment.deploymentGroupName,
    deploymentConfigName: deployment.deploymentConfigName,
    deploymentId: deployment.id,
    previousRevision: returnedRevision(deployment.previousRevision),
    revision: returnedRevision(deployment.revision),
    status: deployment.status,
    errorInformation: deployment.errorInformation,
    createTime: new Date(deployment.createTime),
    startTime: deployment.startTime ? new Date(deployment.startTime) : undefined,
    completeTime: deployment.completeTime ? new Date(deployment.completeTime) : undefined,
    deploymentOverview: overview(deployment),
    description: deployment.description,
    creator: deployment.creator,
    ignoreApplicationStopFailures: deployment.ignoreApplicationStopFailures,
    autoRollbackConfiguration: deployment.autoRollbackConfiguration,
    updateOutdatedInstancesOnly: deployment.updateOutdatedInstancesOnly,
    rollbackInfo: deployment.rollbackInfo,
    deploymentStyle: group.deploymentStyle,
    ...(group.deploymentStyle.deploymentType === "BLUE_GREEN"
      ? {
          blueGreenDeploymentConfiguration: {
            greenFleetProvisioningOption: { action: "DISCOVER_EXISTING" },
            deploymentReadyOption: { actionOnTimeout: "CONTINUE_DEPLOYMENT" },
            terminateBlueInstancesOnDeploymentSuccess: { action: "KEEP_ALIVE" },
          },
        }
      : {}),
    instanceTerminationWaitTimeStarted: false,
    fileExistsBehavior: deployment.fileExistsBehavior,
    deploymentStatusMessages: [],
    computePlatform: "Server",
    targetInstances: { autoScalingGroups: group.autoScalingGroups },
  };
}

function lifecycleEvents(target: DeploymentTarget) {
  return target.lifecycleEvents.map((event) => ({
    lifecycleEventName: event.lifecycleEventName,
    diagnostics: event.diagnostics,
    startTime: event.startTime ? new Date(event.startTime) : undefined,
    endTime: event.endTime ? new Date(event.endTime) : undefined,
    status: event.status,
  }));
}

function startedDeployment(world: World, id: string | undefined): Deployment {
  const deployment = world.codeDeploy.deployment(id);
  if (deployment.status === "Created" || deployment.status === "Queued") {
    throw new AwsServiceError("DeploymentNotStartedException", "The specified deployment has not started.");
  }
  return deployment;
}

export const codeDeployOperations: Record<string, Operation> = {
  GetDeployment(input, { world }) {
    return {
      deploymentInfo: deploymentInfo(world, world.codeDeploy.deployment(asString(input.deploymentId))),
    };
  },

  ListDeployments(input, { world }) {
    const applicationName = asString(input.applicationName);
    const groupName = asString(input.deploymentGroupName);
    if (groupName && !applicationName) {
      throw new AwsServiceError(
        "ApplicationNameRequiredException",
        "If the deployment group name is specified, an application name must be specified as well",
      );
    }
    if (applicationName) world.codeDeploy.application(applicationName);
    if (groupName) world.codeDeploy.deploymentGroup(applicationName, groupName);
    const statuses = asStrings(input.includeOnlyStatuses) ?? [];
    for (const status of statuses) {
      if (!DEPLOYMENT_STATUSES.includes(status))
        throw new AwsServiceError("InvalidDeploymentStatusException", `Invalid deployment status: ${status}`);
    }
    const range = (input.createTimeRange ?? {}) as { start?: unknown; end?: unknown };
    const start = asNumber(range.start);
    const end = asNumber(range.end);
    if (start !== undefined && end !== undefined && start > end) {
      throw new AwsServiceError(
        "InvalidTimeRangeException",
        "The specified time range was specified in an invalid format.",
      );
    }
    const ids = [...world.codeDeploy.order]
      .reverse()
      .map((id) => world.codeDeploy.deployments.get(id)!)
      .filter((deployment) => !applicationName || deployment.applicationName === applicationName)
      .filter((deployment) => !groupName || deployment.deploymentGroupName === groupName)
      .filter((deployment) => statuses.length === 0 || statuses.includes(deployment.status))
      .filter((deployment) => start === undefined || deployment.createTime >= start * 1000)
      .filter((deployment) => end === undefined || deployment.createTime <= end * 1000)
      .map((deployment) => deployment.id);
    const { page, nextToken } = paginate(
      ids,
      PAGE_SIZE,
      asString(input.nextToken),
      "InvalidNextTokenException",
    );
    return { deployments: page, nextToken };
  },

  ListDeploymentTargets(input, { world }) {
    const deployment = startedDeployment(world, asString(input.deploymentId));
    const filters = (input.targetFilters ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(filters)) {
      if (key !== "TargetStatus" && key !== "ServerInstanceLabel") {
        throw new AwsServiceError(
          "InvalidTargetFilterNameException",
          `The target filter name ${key} is invalid.`,
        );
      }
    }
    const statuses = asStrings(filters.TargetStatus) ?? [];
    for (const status of statuses) {
      if (!TARGET_STATUSES.includes(status))
        throw new AwsServiceError("InvalidInputException", `Invalid target status: ${status}`);
    }
    const labels = asStrings(filters.ServerInstanceLabel) ?? [];
    const ids = deployment.targets
      .filter((target) => statuses.length === 0 || statuses.includes(target.status))
      // In-place targets carry no Blue/Green label.
      .filter((target) => labels.length === 0 || labels.includes(target.instanceLabel ?? ""))
      .map((target) => target.instanceId);
    const { page, nextToken } = paginate(
      ids,
      PAGE_SIZE,
      asString(input.nextToken),
      "InvalidNextTokenException",
    );
    return { targetIds: page, nextToken };
  },

  BatchGetDeploymentTargets(input, { world }) {
    const deployment = startedDeployment(world, asString(input.deploymentId));
    const ids = asStrings(input.targetIds) ?? [];
    if (ids.length === 0)
      throw new AwsServiceError(
        "DeploymentTargetIdRequiredException",
        "A deployment target ID was not provided.",
      );
    if (ids.length > 25) {
      throw new AwsServiceError(
        "DeploymentTargetListSizeExceededException",
        "The number of targets to be retrieved is too large. A maximum of 25 can be retrieved at a time.",
      );
    }
    const targets = ids.map((id) => {
      const target = deployment.targets.find((candidate) => candidate.instanceId === id);
      if (!target)
        throw new AwsServiceError(
          "DeploymentTargetDoesNotExistException",
          `The provided target ID ${id} does not belong to the deployment.`,
        );
      return target;
    });
    return {
      deploymentTargets: targets.map((target) => ({
        deploymentTargetType: "InstanceTarget",
        instanceTarget: {
          deploymentId: deployment.id,
          targetId: target.instanceId,
          targetArn: `arn:aws:ec2:${world.region}:${ACCOUNT_ID}:instance/${target.instanceId}`,
          status: target.status,
          lastUpdatedAt: new Date(target.lastUpdatedAt),
          lifecycleEvents: lifecycleEvents(target),
          ...(target.instanceLabel ? { instanceLabel: target.instanceLabel } : {}),
        },
      })),
    };
  },

  ListDeploymentInstances(input, { world }) {
    const deployment = startedDeployment(world, asString(input.deploymentId));
    const statuses = asStrings(input.instanceStatusFilter) ?? [];
    for (const status of statuses) {
      if (!TARGET_STATUSES.includes(status))
        throw new AwsServiceError("InvalidInstanceStatusException", `Invalid instance status: ${status}`);
    }
    const types = asStrings(input.instanceTypeFilter) ?? [];
    const ids = deployment.targets
      .filter((target) => statuses.length === 0 || statuses.includes(target.status))
      .filter(() => types.length === 0)
      .map((target) => target.instanceId);
    const { page, nextToken } = paginate(
      ids,
      PAGE_SIZE,
      asString(input.nextToken),
      "InvalidNextTokenException",
    );
    return { instancesList: page, nextToken };
  },

  BatchGetDeploymentInstances(input, { world }) {
    const deployment = world.codeDeploy.deployment(asString(input.deploymentId));
    const ids = asStrings(input.instanceIds) ?? [];
    if (ids.length === 0)
      throw new AwsServiceError("InstanceIdRequiredException", "The instance ID was not specified.");
    if (ids.length > 25)
      throw new AwsServiceError(
        "BatchLimitExceededException",
        "The maximum number of names or IDs allowed for this request (25) was exceeded.",
      );
    const found = deployment.targets.filter((target) => ids.includes(target.instanceId));
    const missing = ids.filter((id) => !found.some((target) => target.instanceId === id));
    return {
      instancesSummary: found.map((target) => ({
        deploymentId: deployment.id,
        instanceId: target.instanceId,
        status: target.status,
        lastUpdatedAt: new Date(target.lastUpdatedAt),
        lifecycleEvents: lifecycleEvents(target),
        instanceType: "Blue",
      })),
      errorMessage:
        missing.length > 0
          ? `Instances ${missing.join(", ")} are not part of deployment ${deployment.id}`
          : undefined,
    };
  },

  CreateDeployment(input, { world }) {
    const deployment = world.codeDeploy.requestDeployment(input as CreateDeploymentInput);
    return { deploymentId: deployment.id };
  },

  GetDeploymentGroup(input, { world }) {
    const group = world.codeDeploy.deploymentGroup(
      asString(input.applicationName),
      asString(input.deploymentGroupName),
    );
    const summary = (id: string | undefined) => {
      const deployment = id ? world.codeDeploy.deployments.get(id) : undefined;
      return deployment
        ? {
            deploymentId: deployment.id,
            status: deployment.status,
            endTime: deployment.completeTime ? new Date(deployment.completeTime) : undefined,
            createTime: new Date(deployment.createTime),
          }
        : undefined;
    };
    return {
      deploymentGroupInfo: {
        applicationName: group.applicationName,
        deploymentGroupId: group.id,
        deploymentGroupName: group.name,
        deploymentConfigName: group.deploymentConfigName,
        ec2TagFilters: [],
        onPremisesInstanceTagFilters: [],
        autoScalingGroups: group.autoScalingGroups.map((name) => ({
          name,
          hook: `${CODEDEPLOY_HOOK_PREFIX}${group.name}`,
        })),
        serviceRoleArn: group.serviceRoleArn,
        targetRevision: returnedRevision(group.targetRevision),
        triggerConfigurations: [],
        alarmConfiguration: { enabled: false, ignorePollAlarmFailure: false, alarms: [] },
        autoRollbackConfiguration: group.autoRollbackConfiguration ?? { enabled: false, events: [] },
        deploymentStyle: group.deploymentStyle,
        outdatedInstancesStrategy: "UPDATE",
        lastSuccessfulDeployment: summary(group.lastSuccessfulDeploymentId),
        lastAttemptedDeployment: summary(group.lastAttemptedDeploymentId),
        computePlatform: "Server",
        terminationHookEnabled: false,
      },
    };
  },

  GetApplication(input, { world }) {
    const application = world.codeDeploy.application(asString(input.applicationName));
    return {
      application: {
        applicationId: application.id,
        applicationName: application.name,
        createTime: new Date(application.createdAt),
        linkedToGitHub: false,
        computePlatform: "Server",
      },
    };
  },

  ListApplications(input, { world }) {
    const names = [...world.codeDeploy.applications.keys()].sort();
    const { page, nextToken } = paginate(
      names,
      PAGE_SIZE,
      asString(input.nextToken),
      "InvalidNextTokenException",
    );
    return { applications: page, nextToken };
  },

  ListDeploymentGroups(input, { world }) {
    const application = world.codeDeploy.application(asString(input.applicationName));
    const names = [...world.codeDeploy.groups.values()]
      .filter((group) => group.applicationName === application.name)
      .map((group) => group.name)
      .sort();
    const { page, nextToken } = paginate(
      names,
      PAGE_SIZE,
      asString(input.nextToken),
      "InvalidNextTokenException",
    );
    return { applicationName: application.name, deploymentGroups: page, nextToken };
  },
};
