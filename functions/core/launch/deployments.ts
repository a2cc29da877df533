// Asks CodeDeploy, not the instance, whether a deployment is in flight on a launching instance before
// its older running agent is replaced. The agent's own tracker file only exists while a lifecycle event
// runs; between two events of CodeDeploy's launch deployment only CodeDeploy knows, and an agent
// restart then fails the deployment (https://github.com/aws/aws-codedeploy-agent/issues/402). The
// deployment groups that deploy to an Auto Scaling group are named by CodeDeploy's own launch hook on
// it (`CodeDeploy-managed-automatic-launch-deployment-hook-<deployment group>`,
// https://docs.aws.amazon.com/codedeploy/latest/userguide/integrations-aws-auto-scaling.html).
import { ListApplicationsCommand, ListDeploymentGroupsCommand } from "@aws-sdk/client-codedeploy";
import { codeDeploy } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { collect, paginate } from "../common/concurrency.js";
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import { CODEDEPLOY_HOOK_PREFIX } from "../contract.js";
import {
  ACTIVE_DEPLOYMENT_STATUSES,
  listDeploymentInstanceIds,
  listDeployments,
} from "../failure/targets.js";
import { describeLaunchHooks } from "./lifecycle.js";
import type { LaunchRecord } from "./records.js";

/** Applications change rarely: which one holds a deployment group is cached for ten minutes. */
const APPLICATIONS_CACHE_MS = 600_000;
/** A launch deployment is created within seconds of the launch; this much earlier still counts. */
const CREATED_BEFORE_LAUNCH_MS = 300_000;
/** The instances of a deployment do not change once known (bounded, per container). */
const targetsOf = new Map<string, readonly string[]>();
let applications: { at: number; byGroup: Map<string, string[]> } | undefined;

/**
 * The deployment in flight on each of these instances, if any. One not started yet (its instances
 * unknown) counts for every instance launched before it was created. When CodeDeploy cannot be asked,
 * every instance counts as busy: the agent is left running and asked about again.
 */
export async function deploymentsInFlight(records: readonly LaunchRecord[]): Promise<Map<string, string>> {
  const busy = new Map<string, string>();
  const byGroup = new Map<string, LaunchRecord[]>();
  for (const record of records) byGroup.set(record.group, [...(byGroup.get(record.group) ?? []), record]);
  for (const [group, launches] of byGroup) {
    try {
      const deploymentGroups = (await describeLaunchHooks(group))
        .filter((hook) => hook.name.startsWith(CODEDEPLOY_HOOK_PREFIX))
        .map((hook) => hook.name.slice(CODEDEPLOY_HOOK_PREFIX.length));
      if (deploymentGroups.length === 0) continue;
      const since = new Date(
        Math.min(...launches.map((record) => record.startedAt)) - CREATED_BEFORE_LAUNCH_MS,
      );
      for (const deploymentGroup of deploymentGroups) {
        for (const application of await applicationsOf(deploymentGroup)) {
          const active = await listDeployments(application, deploymentGroup, {
            createdSince: since,
            statuses: ACTIVE_DEPLOYMENT_STATUSES,
          });
          for (const deploymentId of active) {
            const instances = targetsOf.get(deploymentId) ?? (await listDeploymentInstanceIds(deploymentId));
            if (targetsOf.size > 10_000) targetsOf.clear();
            if (instances) targetsOf.set(deploymentId, instances);
            for (const record of launches)
              if (!instances || instances.includes(record.instanceId))
                busy.set(record.instanceId, deploymentId);
          }
        }
      }
    } catch (error) {
      logger.warn(
        "Could not ask CodeDeploy about deployments in flight; the agents are left as they are for now",
        { autoScalingGroupName: group, error: errorMessage(error) },
      );
      for (const record of launches) busy.set(record.instanceId, "(unknown: CodeDeploy did not answer)");
    }
  }
  return busy;
}

/** The applications that have a deployment group of this name. */
async function applicationsOf(deploymentGroup: string): Promise<string[]> {
  if (!applications || clock.now() - applications.at > APPLICATIONS_CACHE_MS) {
    const byGroup = new Map<string, string[]>();
    const names = await collect(
      paginate((nextToken) => codeDeploy.send(new ListApplicationsCommand({ nextToken }))),
      (page) => page.applications,
    );
    for (const application of names) {
      const groups = await collect(
        paginate((nextToken) =>
          codeDeploy.send(new ListDeploymentGroupsCommand({ applicationName: application, nextToken })),
        ),
        (page) => page.deploymentGroups,
      );
      for (const group of groups) byGroup.set(group, [...(byGroup.get(group) ?? []), application]);
    }
    applications = { at: clock.now(), byGroup };
  }
  return applications.byGroup.get(deploymentGroup) ?? [];
}
