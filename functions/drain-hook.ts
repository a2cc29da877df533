// Drain, run by CloudFormation just before one of our lifecycle hooks is deleted (a custom resource
// per hook that depends on the hook, so CloudFormation deletes it first): every launch still waiting
// on the hook is completed with CONTINUE. Deleting a hook completes its outstanding launches with
// ABANDON ("If there are any outstanding lifecycle actions, they are completed first (ABANDON for
// launching instances, CONTINUE for terminating instances)",
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteLifecycleHook.html): a stack
// update that removes a group from `groups`, or a stage's removal, would otherwise terminate the
// capacity our hook holds. Fail open: those instances go on as if the service had let them in, and
// CodeDeploy's own hook still judges them by their launch deployment. The sandbox's stage update
// runs the same drain (sandbox/service.ts).
import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeWarmPoolCommand,
  type Instance,
} from "@aws-sdk/client-auto-scaling";
import { customResourceEvent, respond } from "./core/common/custom-resource.js";
import { errorMessage, isNoActiveAction } from "./core/common/errors.js";

/** States in which a launch can wait on a launch hook (into the group, or into its warm pool). */
const WAITING = new Set(["Pending:Wait", "Warmed:Pending:Wait"]);

/** What the drain needs of Auto Scaling. */
export interface DrainApi {
  /** Instance ids of the group waiting in a launch hook's wait state (any hook's). */
  waitingInstances(groupName: string): Promise<string[]>;
  /** CompleteLifecycleAction CONTINUE by instance id; throws AWS's error. */
  complete(groupName: string, hookName: string, instanceId: string): Promise<void>;
}

export interface DrainReport {
  groupName: string;
  hookName: string;
  /** Launches our hook held, completed with CONTINUE. */
  continued: string[];
  /** Waiting instances our hook no longer held (another hook holds them): left alone. */
  notOurs: string[];
  /** Instances whose completion failed otherwise, with the error. */
  failed: { instanceId: string; error: string }[];
  /** The group is gone (deleted before the hook): nothing waits on it. */
  groupMissing?: boolean;
}

/** Completes with CONTINUE every launch that waits on the hook; never throws for one instance. */
export async function drainLifecycleHook(
  api: DrainApi,
  target: { groupName: string; hookName: string },
): Promise<DrainReport> {
  const report: DrainReport = { ...target, continued: [], notOurs: [], failed: [] };
  let waiting: string[];
  try {
    waiting = await api.waitingInstances(target.groupName);
  } catch (error) {
    if (/not found|does not exist|No group found/i.test(errorMessage(error))) {
      return { ...report, groupMissing: true };
    }
    throw error;
  }
  for (const instanceId of waiting) {
    try {
      await api.complete(target.groupName, target.hookName, instanceId);
      report.continued.push(instanceId);
    } catch (error) {
      if (isNoActiveAction(error)) report.notOurs.push(instanceId);
      else report.failed.push({ instanceId, error: errorMessage(error) });
    }
  }
  return report;
}

let client: AutoScalingClient | undefined;

/** The drain over the AWS SDK. */
export function sdkDrainApi(autoScaling: AutoScalingClient): DrainApi {
  return {
    async waitingInstances(groupName) {
      const answer = await autoScaling.send(
        new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }),
      );
      const group = answer.AutoScalingGroups?.[0];
      if (!group) throw new Error(`group ${groupName} not found`);
      // An instance launched into the warm pool waits on the launch hook in Warmed:Pending:Wait and
      // is listed only by DescribeWarmPool; deleting the hook would abandon it as well.
      const instances: Instance[] = [...(group.Instances ?? [])];
      if (group.WarmPoolConfiguration) {
        let NextToken: string | undefined;
        do {
          const page = await autoScaling.send(
            new DescribeWarmPoolCommand({ AutoScalingGroupName: groupName, NextToken }),
          );
          instances.push(...(page.Instances ?? []));
          NextToken = page.NextToken;
        } while (NextToken);
      }
      const waiting = instances
        .filter((instance) => WAITING.has(instance.LifecycleState ?? ""))
        .map((instance) => instance.InstanceId ?? "")
        .filter(Boolean);
      return [...new Set(waiting)];
    },
    async complete(groupName, hookName, instanceId) {
      await autoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: groupName,
          LifecycleHookName: hookName,
          InstanceId: instanceId,
          LifecycleActionResult: "CONTINUE",
        }),
      );
    },
  };
}

/**
 * Drains on Delete; Create and Update have nothing to do. Always answers SUCCESS: a drain that could
 * not complete every launch must not hold the stack update (the hook's deletion then abandons what is
 * left, as it would without the drain); what happened is logged.
 */
export async function handler(input: unknown): Promise<void> {
  // Nothing to answer without CloudFormation's response URL: a test event or a mistaken invocation
  // is refused by name rather than failing in fetch.
  const event = customResourceEvent<{ AutoScalingGroupName?: string; LifecycleHookName?: string }>(
    input,
    "AutoScalingGroupName and LifecycleHookName",
  );
  const groupName = event.ResourceProperties.AutoScalingGroupName ?? "";
  const hookName = event.ResourceProperties.LifecycleHookName ?? "";
  // A new hook name is a new resource: CloudFormation then deletes the old one, which drains the old hook.
  const physicalId =
    event.RequestType === "Delete" && event.PhysicalResourceId
      ? event.PhysicalResourceId
      : `drain-${groupName}-${hookName}`;
  let reason = "nothing to drain";
  if (event.RequestType === "Delete" && groupName && hookName) {
    try {
      client ??= new AutoScalingClient({ region: process.env.AWS_REGION });
      const report = await drainLifecycleHook(sdkDrainApi(client), { groupName, hookName });
      reason = `${report.continued.length} waiting launches completed with CONTINUE before ${hookName} is deleted from ${groupName}${report.failed.length ? `; ${report.failed.length} could not be completed` : ""}`;
      console.log(JSON.stringify({ requestType: event.RequestType, ...report }));
    } catch (error) {
      reason = `could not drain ${hookName} on ${groupName}: ${String(error)}`;
      console.log(JSON.stringify({ requestType: event.RequestType, groupName, hookName, error: reason }));
    }
  }
  await respond(event, { status: "SUCCESS", reason, physicalId });
}
