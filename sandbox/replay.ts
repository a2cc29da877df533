import { defaultHookName } from "../stacks/stage-policy.js";
import { skipIdleTime } from "./runtime/idle-skip.js";
import { createSandbox } from "./sandbox.js";
import { APPLICATION, RELEASE_1, RELEASE_2 } from "./scenarios/fleet.js";

/**
 * Replays one event through a handler on a fresh sandbox fleet shaped after the event: the group,
 * hook, instances (with the event's lifecycle action tokens) or the failed deployment it names exist
 * in the sandbox, so the handler's report shows what it would decide, with no AWS account.
 */
export type ReplayKind = "launch" | "deployment";

export class ReplayInputError extends Error {
  override name = "ReplayInputError";
}

interface LaunchTarget {
  instanceId: string;
  groupName: string;
  hookName?: string;
  token?: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

function launchTargets(payload: unknown): LaunchTarget[] {
  if (isObject(payload) && Array.isArray(payload.Records)) {
    return payload.Records.flatMap((record) => {
      const body = isObject(record) && typeof record.body === "string" ? record.body : "null";
      try {
        return launchTargets(JSON.parse(body));
      } catch {
        return [];
      }
    });
  }
  if (isObject(payload) && isObject(payload.detail)) {
    const detail = payload.detail;
    if (typeof detail.EC2InstanceId !== "string" || typeof detail.AutoScalingGroupName !== "string")
      return [];
    return [
      {
        instanceId: detail.EC2InstanceId,
        groupName: detail.AutoScalingGroupName,
        hookName: typeof detail.LifecycleHookName === "string" ? detail.LifecycleHookName : undefined,
        token: typeof detail.LifecycleActionToken === "string" ? detail.LifecycleActionToken : undefined,
      },
    ];
  }
  if (
    isObject(payload) &&
    Array.isArray(payload.instanceIds) &&
    typeof payload.autoScalingGroupName === "string"
  ) {
    const groupName = payload.autoScalingGroupName;
    const hookName = typeof payload.lifecycleHookName === "string" ? payload.lifecycleHookName : undefined;
    return payload.instanceIds
      .filter((id): id is string => typeof id === "string")
      .map((instanceId) => ({ instanceId, groupName, hookName }));
  }
  return [];
}

/** Runs the launch or deployment-failure handler on `payload` in a sandbox and returns its report. */
export async function replayOnSandbox(
  kind: ReplayKind,
  payload: unknown,
  options: { seed?: number } = {},
): Promise<unknown> {
  // A clock slow enough for the handler's own time, with the idle stretches skipped.
  const sandbox = await createSandbox({ seed: options.seed ?? 1, clockScale: 0.2 });
  const skip = await skipIdleTime(sandbox);
  const { world } = sandbox;
  try {
    if (kind === "launch") {
      const targets = launchTargets(payload);
      if (targets.length === 0)
        throw new ReplayInputError("the payload names no instance to replay a launch for");
      const groupName = targets[0]!.groupName;
      const hookName = targets[0]!.hookName ?? defaultHookName("sandbox");
      world.autoScaling.createGroup({
        name: groupName,
        maxSize: targets.length,
        image: { imageId: "ami-0sandbox", bakedAgent: null, registrationDelaySeconds: { min: 15, max: 40 } },
      });
      // Deployed, a replay the function cannot see through in its 40 s goes on through the launch
      // queue; here nothing reads that queue, so the function gets the time to report the end.
      const service = await sandbox.deployService(
        { groups: [groupName], hook: { name: hookName }, launch: { timeoutSeconds: 300 } },
        { triggers: false },
      );
      world.autoScaling.launchInstances(
        groupName,
        targets.map((target) => ({
          id: target.instanceId,
          tokens: target.token ? { [hookName]: target.token } : undefined,
        })),
      );
      await sandbox.waitFor(
        () =>
          targets.every(
            (target) => world.instances.get(target.instanceId)?.lifecycleState === "Pending:Wait",
          ),
        { timeoutSeconds: 60, pollSeconds: 1 },
      );
      return await invoke(sandbox.runtime.invoke(service.launch, payload));
    }
    const detail = isObject(payload) && isObject(payload.detail) ? payload.detail : {};
    const deploymentId =
      isObject(payload) && typeof payload.deploymentId === "string"
        ? payload.deploymentId
        : typeof detail.deploymentId === "string"
          ? detail.deploymentId
          : undefined;
    if (!deploymentId) throw new ReplayInputError("the payload names no deployment to replay");
    const application = typeof detail.application === "string" ? detail.application : APPLICATION;
    const groupName = typeof detail.deploymentGroup === "string" ? detail.deploymentGroup : "api-dg";
    const asg = `${groupName}-instances`;
    world.autoScaling.createGroup({ name: asg, maxSize: 2, image: { imageId: "ami-0sandbox" } });
    world.addRunningInstance(asg, {
      agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
    });
    world.codeDeploy.createApplication(application);
    world.codeDeploy.createDeploymentGroup({
      applicationName: application,
      name: groupName,
      autoScalingGroups: [asg],
      lastSuccessfulRevision: RELEASE_1,
    });
    const service = await sandbox.deployService(
      { groups: [], deploymentGroups: [`${application}/${groupName}`] },
      { triggers: false },
    );
    const failed = world.codeDeploy.createDeployment(
      {
        applicationName: application,
        deploymentGroupName: groupName,
        revision: RELEASE_2,
        description: "release 1.4.2",
      },
      "user",
      /^d-[A-Z0-9]{9}$/.test(deploymentId) ? deploymentId : undefined,
    );
    await sandbox.waitFor(() => failed.status === "Failed", { timeoutSeconds: 900, pollSeconds: 2 });
    return await invoke(sandbox.runtime.invoke(service.failure, payload));
  } finally {
    skip.stop();
    await sandbox.close();
  }
}

async function invoke(
  pending: ReturnType<import("./runtime/lambda.js").LambdaRuntime["invoke"]>,
): Promise<unknown> {
  const result = await pending;
  if (!result.ok) throw new ReplayInputError(`${result.error?.errorType}: ${result.error?.errorMessage}`);
  return result.result;
}
