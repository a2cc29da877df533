import {
  BatchGetDeploymentInstancesCommand,
  BatchGetDeploymentTargetsCommand,
  ListDeploymentInstancesCommand,
  ListDeploymentsCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import type { FailedTargetRecord } from "./classify-failure.js";
import { codeDeploy } from "./common/clients.js";
import { AwsCallError, awsErrorName, errorMessage } from "./common/errors.js";
import { callCodeDeploy, chunk } from "./deployment-calls.js";

/** BatchGetDeploymentTargets and BatchGetDeploymentInstances take at most 25 ids per call. */
export const TARGET_BATCH_SIZE = 25;

/**
 * Errors that mean "the targets API cannot describe this deployment" rather than "something broke":
 * the older instances API still can (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_ListDeploymentTargets.html).
 */
const TARGETS_UNAVAILABLE = new Set([
  "InvalidDeploymentIdException",
  "UnsupportedActionForDeploymentTypeException",
  "DeploymentNotStartedException",
  "InvalidDeploymentInstanceTypeException",
]);

/** Deployments that may still touch instances: never restart an agent under them. */
export const ACTIVE_DEPLOYMENT_STATUSES = ["InProgress", "Queued", "Created"] as const;

/**
 * The failed instances of a deployment, with their lifecycle events and diagnostics. Uses
 * ListDeploymentTargets + BatchGetDeploymentTargets, and falls back to the deprecated
 * ListDeploymentInstances + BatchGetDeploymentInstances when targets are unavailable or empty.
 */
export async function listFailedTargets(deploymentId: string): Promise<FailedTargetRecord[]> {
  const targetIds = await listTargetIds(deploymentId, true);
  if (targetIds && targetIds.length > 0) return describeTargets(deploymentId, targetIds);
  // Both APIs saying "not available" means CodeDeploy never reached an instance: nothing failed on one.
  const instanceIds = await listInstanceIds(deploymentId, true);
  return instanceIds && instanceIds.length > 0 ? describeInstances(deploymentId, instanceIds) : [];
}

/** Every instance a deployment covers, whatever its status; `undefined` when it cannot be known yet. */
export async function listDeploymentInstanceIds(deploymentId: string): Promise<string[] | undefined> {
  const targetIds = await listTargetIds(deploymentId, false);
  if (targetIds && targetIds.length > 0) return targetIds;
  const instanceIds = await listInstanceIds(deploymentId, false);
  return instanceIds && instanceIds.length > 0 ? instanceIds : undefined;
}

/** Deployments of a group that are running or about to run (ListDeployments is filtered server-side). */
export async function listActiveDeployments(
  applicationName: string,
  deploymentGroupName: string,
): Promise<string[]> {
  const ids: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await callCodeDeploy("ListDeployments", `${applicationName}/${deploymentGroupName}`, () =>
      codeDeploy.send(
        new ListDeploymentsCommand({
          applicationName,
          deploymentGroupName,
          includeOnlyStatuses: [...ACTIVE_DEPLOYMENT_STATUSES],
          nextToken,
        }),
      ),
    );
    ids.push(...(page.deployments ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return ids;
}

export interface BusyInstances {
  /** instance id -> the active deployment that covers it */
  byInstance: Map<string, string>;
  /** active deployments whose instances are not known yet (not started): they may cover any instance */
  unknown: string[];
}

/**
 * Instances an active deployment of the group covers. Upgrading the agent restarts it, and an agent
 * restart fails the lifecycle event in progress ("Failing in-progress lifecycle event after an agent
 * restart", https://github.com/aws/aws-codedeploy-agent/issues/402), so these must not be touched.
 */
export async function findBusyInstances(
  applicationName: string,
  deploymentGroupName: string,
): Promise<BusyInstances> {
  const busy: BusyInstances = { byInstance: new Map(), unknown: [] };
  for (const deploymentId of await listActiveDeployments(applicationName, deploymentGroupName)) {
    const instanceIds = await listDeploymentInstanceIds(deploymentId);
    if (instanceIds === undefined) {
      busy.unknown.push(deploymentId);
      continue;
    }
    for (const instanceId of instanceIds) {
      if (!busy.byInstance.has(instanceId)) busy.byInstance.set(instanceId, deploymentId);
    }
  }
  return busy;
}

async function listTargetIds(deploymentId: string, onlyFailed: boolean): Promise<string[] | undefined> {
  const ids: string[] = [];
  let nextToken: string | undefined;
  try {
    do {
      const page = await codeDeploy.send(
        new ListDeploymentTargetsCommand({
          deploymentId,
          nextToken,
          ...(onlyFailed ? { targetFilters: { TargetStatus: ["Failed"] } } : {}),
        }),
      );
      ids.push(...(page.targetIds ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
  } catch (error) {
    if (TARGETS_UNAVAILABLE.has(awsErrorName(error))) return undefined;
    throw wrap("ListDeploymentTargets", deploymentId, error);
  }
  return ids;
}

async function listInstanceIds(deploymentId: string, onlyFailed: boolean): Promise<string[] | undefined> {
  const ids: string[] = [];
  let nextToken: string | undefined;
  try {
    do {
      const page = await codeDeploy.send(
        new ListDeploymentInstancesCommand({
          deploymentId,
          nextToken,
          ...(onlyFailed ? { instanceStatusFilter: ["Failed"] } : {}),
        }),
      );
      ids.push(...(page.instancesList ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
  } catch (error) {
    if (TARGETS_UNAVAILABLE.has(awsErrorName(error))) return undefined;
    throw wrap("ListDeploymentInstances", deploymentId, error);
  }
  return ids;
}

async function describeTargets(deploymentId: string, targetIds: string[]): Promise<FailedTargetRecord[]> {
  const records: FailedTargetRecord[] = [];
  for (const batch of chunk(targetIds, TARGET_BATCH_SIZE)) {
    const answer = await callCodeDeploy("BatchGetDeploymentTargets", deploymentId, () =>
      codeDeploy.send(new BatchGetDeploymentTargetsCommand({ deploymentId, targetIds: batch })),
    );
    for (const target of answer.deploymentTargets ?? []) {
      // EC2/on-premises deployments have instance targets; their target id is the instance id.
      const instance = target.instanceTarget;
      if (!instance?.targetId) continue;
      records.push({ instanceId: instance.targetId, lifecycleEvents: instance.lifecycleEvents ?? [] });
    }
  }
  return records;
}

async function describeInstances(deploymentId: string, instanceIds: string[]): Promise<FailedTargetRecord[]> {
  const records: FailedTargetRecord[] = [];
  for (const batch of chunk(instanceIds, TARGET_BATCH_SIZE)) {
    const answer = await callCodeDeploy("BatchGetDeploymentInstances", deploymentId, () =>
      codeDeploy.send(new BatchGetDeploymentInstancesCommand({ deploymentId, instanceIds: batch })),
    );
    for (const summary of answer.instancesSummary ?? []) {
      if (!summary.instanceId) continue;
      // An instance can come back as an ARN (arn:aws:ec2:...:instance/i-...); the rest of the path uses ids.
      records.push({
        instanceId: plainInstanceId(summary.instanceId),
        lifecycleEvents: summary.lifecycleEvents ?? [],
      });
    }
  }
  return records;
}

function plainInstanceId(id: string): string {
  return id.includes("/") ? (id.split("/").pop() ?? id) : id;
}

function wrap(operation: string, deploymentId: string, error: unknown): AwsCallError {
  return new AwsCallError(`${operation} for ${deploymentId} failed: ${errorMessage(error)}`, {
    cause: error,
  });
}
