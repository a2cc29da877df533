// The instances of a CodeDeploy deployment: which failed and how (lifecycle events with their
// diagnostics), and which are still covered by a deployment that runs.
import {
  BatchGetDeploymentInstancesCommand,
  BatchGetDeploymentTargetsCommand,
  type DeploymentStatus,
  ListDeploymentInstancesCommand,
  ListDeploymentsCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import { codeDeploy } from "../common/clients.js";
import { chunk, collect, paginate, type TokenPage } from "../common/concurrency.js";
import { AwsCallError, awsErrorName, callAws } from "../common/errors.js";
import type { FailedTargetRecord } from "./classify.js";

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

/**
 * Deployments that may still touch instances, and that hold the group (one deployment at a time):
 * never restart an agent under them. `Baking` and `Ready` (a blue/green deployment waiting to reroute
 * traffic) have not ended either.
 */
export const ACTIVE_DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = [
  "InProgress",
  "Queued",
  "Created",
  "Baking",
  "Ready",
];

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

/**
 * Deployments of a group, newest first: those created since `createdSince`, or those in one of
 * `statuses` (ListDeployments filters both server-side).
 */
export async function listDeployments(
  applicationName: string,
  deploymentGroupName: string,
  filter: { createdSince?: Date; statuses?: readonly DeploymentStatus[] },
): Promise<string[]> {
  return callAws("ListDeployments", `${applicationName}/${deploymentGroupName}`, () =>
    collect(
      paginate((nextToken) =>
        codeDeploy.send(
          new ListDeploymentsCommand({
            applicationName,
            deploymentGroupName,
            ...(filter.createdSince ? { createTimeRange: { start: filter.createdSince } } : {}),
            ...(filter.statuses ? { includeOnlyStatuses: [...filter.statuses] } : {}),
            nextToken,
          }),
        ),
      ),
      (page) => page.deployments,
    ),
  );
}

/** The deployments of a group that have not ended, newest first. */
export function listActiveDeployments(
  applicationName: string,
  deploymentGroupName: string,
): Promise<string[]> {
  return listDeployments(applicationName, deploymentGroupName, { statuses: ACTIVE_DEPLOYMENT_STATUSES });
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
  const active = await listActiveDeployments(applicationName, deploymentGroupName);
  for (const deploymentId of active) {
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

function listTargetIds(deploymentId: string, onlyFailed: boolean): Promise<string[] | undefined> {
  const filter = onlyFailed ? { targetFilters: { TargetStatus: ["Failed"] } } : {};
  return listIds(
    "ListDeploymentTargets",
    deploymentId,
    (nextToken) => codeDeploy.send(new ListDeploymentTargetsCommand({ deploymentId, nextToken, ...filter })),
    (page) => page.targetIds,
  );
}

function listInstanceIds(deploymentId: string, onlyFailed: boolean): Promise<string[] | undefined> {
  const filter = onlyFailed ? { instanceStatusFilter: ["Failed" as const] } : {};
  return listIds(
    "ListDeploymentInstances",
    deploymentId,
    (nextToken) =>
      codeDeploy.send(new ListDeploymentInstancesCommand({ deploymentId, nextToken, ...filter })),
    (page) => page.instancesList,
  );
}

/** Every id of a paginated list call, or undefined when the API cannot describe this deployment. */
function listIds<P extends TokenPage>(
  operation: string,
  deploymentId: string,
  fetchPage: (nextToken: string | undefined) => Promise<P>,
  ids: (page: P) => string[] | undefined,
): Promise<string[] | undefined> {
  return unlessUnavailable(callAws(operation, deploymentId, () => collect(paginate(fetchPage), ids)));
}

/** Undefined when the API cannot describe this deployment's instances (see TARGETS_UNAVAILABLE). */
async function unlessUnavailable<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof AwsCallError && TARGETS_UNAVAILABLE.has(awsErrorName(error.cause))) return undefined;
    throw error;
  }
}

function describeTargets(deploymentId: string, targetIds: string[]): Promise<FailedTargetRecord[]> {
  return describeInBatches("BatchGetDeploymentTargets", deploymentId, targetIds, async (batch) => {
    const answer = await codeDeploy.send(
      new BatchGetDeploymentTargetsCommand({ deploymentId, targetIds: batch }),
    );
    // EC2/on-premises deployments have instance targets; their target id is the instance id.
    return (answer.deploymentTargets ?? []).flatMap(({ instanceTarget: instance }) =>
      instance?.targetId
        ? [{ instanceId: instance.targetId, lifecycleEvents: instance.lifecycleEvents ?? [] }]
        : [],
    );
  });
}

function describeInstances(deploymentId: string, instanceIds: string[]): Promise<FailedTargetRecord[]> {
  return describeInBatches("BatchGetDeploymentInstances", deploymentId, instanceIds, async (batch) => {
    const answer = await codeDeploy.send(
      new BatchGetDeploymentInstancesCommand({ deploymentId, instanceIds: batch }),
    );
    // An instance can come back as an ARN (arn:aws:ec2:...:instance/i-...); the rest of the path uses ids.
    return (answer.instancesSummary ?? []).flatMap((summary) =>
      summary.instanceId
        ? [
            {
              instanceId: plainInstanceId(summary.instanceId),
              lifecycleEvents: summary.lifecycleEvents ?? [],
            },
          ]
        : [],
    );
  });
}

/** Describes ids in batches of TARGET_BATCH_SIZE, one call at a time. */
async function describeInBatches(
  operation: string,
  deploymentId: string,
  ids: string[],
  describe: (batch: string[]) => Promise<FailedTargetRecord[]>,
): Promise<FailedTargetRecord[]> {
  const records: FailedTargetRecord[] = [];
  for (const batch of chunk(ids, TARGET_BATCH_SIZE)) {
    records.push(...(await callAws(operation, deploymentId, () => describe(batch))));
  }
  return records;
}

function plainInstanceId(id: string): string {
  return id.includes("/") ? (id.split("/").pop() ?? id) : id;
}
