import {
  CreateDeploymentCommand,
  type CreateDeploymentInput,
  type DeploymentInfo,
  GetDeploymentCommand,
} from "@aws-sdk/client-codedeploy";
import { codeDeploy } from "../common/clients.js";
import { AwsCallError, awsErrorName, callAws, errorMessage } from "../common/errors.js";
import { FOLLOW_ON_CREATORS, type LaterDeployment, ROLLBACK_CREATORS } from "./policy.js";
import { listDeployments } from "./targets.js";

// Redeploying a failed deployment: the marker that chains redeployments to their original failure,
// the later deployments of the group that make a redeploy unnecessary or harmful, and the
// CreateDeployment request that repeats the failed one.

/**
 * Redeployments this service creates carry a marker in their description naming the stage that made
 * it, the original failed deployment and the attempt number
 * (`[agentfix <stage> redeploy of d-... attempt n]`), so chains of redeployments can be counted, a
 * duplicate event can find the redeployment already made, and a stage can tell another stage's
 * chain from its own, with no state of our own. Earlier releases wrote the marker without the stage
 * (`[agentfix redeploy of d-... attempt n]`); it is still read, as made by an unknown stage of an
 * earlier release: it counts toward the attempt cap and as an existing redeployment, like our own.
 * The stage is the one the stack deployed (STAGE: 1-36 letters, digits or '-').
 */
const MARKER_PATTERN =
  /\s*\[agentfix (?:([A-Za-z0-9-]{1,36}) )?redeploy of (d-[A-Za-z0-9]+) attempt (\d+)\]\s*/;

/** "Maximum number of characters in a deployment description: 100"
 * (https://docs.aws.amazon.com/codedeploy/latest/userguide/limits.html); longer is DescriptionTooLongException. */
export const MAX_DESCRIPTION_CHARS = 100;

/** Deployments created after the failure that are read to find a redeployment, at most. */
export const MAX_REDEPLOY_CANDIDATES = 50;

export interface RedeployMarker {
  originalDeploymentId: string;
  attempt: number;
  /**
   * The stage that made this redeployment (and so owns its chain). Undefined for a failure that is
   * no redeployment (attempt 0), or for a marker of an earlier release, which named no stage.
   */
  stage?: string;
}

/** The marker a stage writes: it always names the stage. */
export function formatMarker(marker: RedeployMarker & { stage: string }): string {
  return `[agentfix ${marker.stage} redeploy of ${marker.originalDeploymentId} attempt ${marker.attempt}]`;
}

export function parseMarker(description: string | undefined): RedeployMarker | undefined {
  const match = description?.match(MARKER_PATTERN);
  if (!match?.[2] || !match[3]) return undefined;
  return {
    originalDeploymentId: match[2],
    attempt: Number(match[3]),
    ...(match[1] ? { stage: match[1] } : {}),
  };
}

/**
 * The redeployment's description: the original's own text (without an earlier marker) when it fits
 * next to the marker, shortened when it does not; the marker itself is always whole.
 */
export function composeDescription(
  originalDescription: string | undefined,
  marker: RedeployMarker & { stage: string },
): string {
  const tag = formatMarker(marker);
  const text = (originalDescription ?? "").replace(MARKER_PATTERN, " ").replace(/\s+/g, " ").trim();
  if (!text) return tag;
  const room = MAX_DESCRIPTION_CHARS - tag.length - 1;
  if (text.length <= room) return `${text} ${tag}`;
  if (room < 2) return tag;
  return `${text.slice(0, room - 1)}… ${tag}`;
}

/** Where this failure stands in its chain: the original failed deployment and this one's attempt. */
export function chainOf(deployment: DeploymentInfo, deploymentId: string): RedeployMarker {
  return parseMarker(deployment.description) ?? { originalDeploymentId: deploymentId, attempt: 0 };
}

/**
 * The chain of a failure, rollbacks included: an automatic rollback belongs to the chain of the
 * deployment it rolled back (rollbackInfo.rollbackTriggeringDeploymentId), so a redeploy of a failed
 * rollback counts against the same cap and a rollback of a redeployment never starts a new chain.
 */
export async function findChain(deployment: DeploymentInfo, deploymentId: string): Promise<RedeployMarker> {
  const trigger = deployment.rollbackInfo?.rollbackTriggeringDeploymentId;
  if (parseMarker(deployment.description) || !trigger || !ROLLBACK_CREATORS.has(deployment.creator ?? "")) {
    return chainOf(deployment, deploymentId);
  }
  return chainOf(await getDeployment(trigger), trigger);
}

/**
 * Looks at the deployments of the group created since the failed one: an existing redeployment of
 * this failure (a duplicate event or a retried invocation must not create a second; one another
 * stage made is reported as that stage's), a rollback, or a newer deployment that replaced the
 * failed revision (redeploying the old revision would undo it). Launch deployments of new instances
 * and auto-update follow-ons do not count.
 *
 * Two stages whose scopes overlap (`*` in both, say) get the same FAILURE event at the same time.
 * Their leases are in separate tables, so nothing but CodeDeploy itself is shared: the markers of
 * the chain decide. Once one stage has created its redeployment, the other finds it here (before
 * any agent is touched, and again just before CreateDeployment) and leaves the failure to it, and
 * a later failure of that redeployment carries the first stage's marker, so the other skips it too.
 * What is left is the race of two first looks: both stages can see no redeployment yet, check and
 * upgrade the same agents at the same time (the install document skips an agent already current,
 * and two installs of one package on one instance make one of them fail and be reported), and both
 * call CreateDeployment. CodeDeploy runs one deployment per group, so the second is refused with
 * DeploymentLimitExceededException while the first runs; it is deferred and, when it looks again,
 * finds the first stage's redeployment here. A second redeployment is only made if the first has
 * already ended between the other stage's last look here and its CreateDeployment (a second or so),
 * or if ListDeployments does not show the first yet (eventual consistency).
 */
export async function findLaterDeployment(
  failed: DeploymentInfo,
  failedId: string,
  chain: RedeployMarker,
  stage: string,
): Promise<LaterDeployment | undefined> {
  const applicationName = failed.applicationName ?? "";
  const deploymentGroupName = failed.deploymentGroupName ?? "";
  const listed = await listDeployments(applicationName, deploymentGroupName, {
    createdSince: failed.createTime,
  });
  const candidates = listed.filter((id) => id !== failedId);

  let superseding: LaterDeployment | undefined;
  for (const candidateId of candidates.slice(0, MAX_REDEPLOY_CANDIDATES)) {
    const info = await getDeployment(candidateId);
    const marker = parseMarker(info.description);
    if (marker?.originalDeploymentId === chain.originalDeploymentId) {
      // A marker of an earlier release (no stage) counts as ours: it is a redeployment all the same.
      if (marker.stage !== undefined && marker.stage !== stage) {
        return {
          kind: "other-stage",
          deploymentId: candidateId,
          attempt: marker.attempt,
          stage: marker.stage,
        };
      }
      return { kind: "redeployment", deploymentId: candidateId, attempt: marker.attempt };
    }
    const creator = info.creator ?? "";
    if (ROLLBACK_CREATORS.has(creator)) {
      superseding ??= { kind: "rollback", deploymentId: candidateId };
    } else if (!FOLLOW_ON_CREATORS.has(creator)) {
      superseding ??= { kind: "superseded", deploymentId: candidateId, creator: creator || "unknown" };
    }
  }
  if (superseding) return superseding;
  // Unread candidates might hide a redeployment: never risk a second one.
  if (candidates.length > MAX_REDEPLOY_CANDIDATES) return { kind: "too-many", count: candidates.length };
  return undefined;
}

export async function getDeployment(deploymentId: string): Promise<DeploymentInfo> {
  const answer = await callAws("GetDeployment", deploymentId, () =>
    codeDeploy.send(new GetDeploymentCommand({ deploymentId })),
  );
  if (!answer.deploymentInfo) {
    throw new AwsCallError(`GetDeployment for ${deploymentId} returned no deploymentInfo`);
  }
  return answer.deploymentInfo;
}

/**
 * The CreateDeployment request that repeats the failed deployment: same application, group,
 * revision and configuration, the original's file-exists behaviour, ApplicationStop tolerance,
 * rollback and outdated-only settings, plus the marker. An alarm override is not carried over:
 * passing `overrideAlarmConfiguration` needs the UpdateDeploymentGroup permission
 * (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_CreateDeployment.html), which this
 * service does not hold, so the group's own alarm configuration applies to the redeployment.
 */
export function redeploymentInput(
  failed: DeploymentInfo,
  marker: RedeployMarker & { stage: string },
): CreateDeploymentInput {
  const restart = failed.deploymentMode === "RESTART";
  return {
    applicationName: failed.applicationName,
    deploymentGroupName: failed.deploymentGroupName,
    // A RESTART deployment re-runs the group's last successful revision and rejects a revision.
    ...(restart ? { deploymentMode: failed.deploymentMode } : { revision: failed.revision }),
    deploymentConfigName: failed.deploymentConfigName,
    description: composeDescription(failed.description, marker),
    ...(failed.fileExistsBehavior !== undefined ? { fileExistsBehavior: failed.fileExistsBehavior } : {}),
    ...(failed.ignoreApplicationStopFailures !== undefined
      ? { ignoreApplicationStopFailures: failed.ignoreApplicationStopFailures }
      : {}),
    ...(failed.autoRollbackConfiguration !== undefined
      ? { autoRollbackConfiguration: failed.autoRollbackConfiguration }
      : {}),
    ...(failed.updateOutdatedInstancesOnly !== undefined && !restart
      ? { updateOutdatedInstancesOnly: failed.updateOutdatedInstancesOnly }
      : {}),
  };
}

/** What CreateDeployment made of the redeployment: created, or refused while the group is busy. */
export type RedeployOutcome = { deploymentId: string } | { busy: string; cause: unknown };

/**
 * Creates the redeployment. `DeploymentLimitExceededException` means another deployment runs in the
 * group ("Maximum number of concurrent deployments to a deployment group: 1",
 * https://docs.aws.amazon.com/codedeploy/latest/userguide/limits.html): reported as busy, for the
 * caller to try again later. Any other error is thrown.
 */
export async function createRedeployment(input: CreateDeploymentInput): Promise<RedeployOutcome> {
  const group = `${input.applicationName}/${input.deploymentGroupName}`;
  try {
    const { deploymentId } = await callAws("CreateDeployment", group, () =>
      codeDeploy.send(new CreateDeploymentCommand(input)),
    );
    if (!deploymentId) throw new AwsCallError(`CreateDeployment for ${group} returned no deploymentId`);
    return { deploymentId };
  } catch (error) {
    const cause = error instanceof AwsCallError ? error.cause : error;
    if (awsErrorName(cause) !== "DeploymentLimitExceededException") throw error;
    return { busy: errorMessage(cause), cause };
  }
}
