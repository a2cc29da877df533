import type { Sandbox } from "../sandbox.js";
import type { ServiceDeployment } from "../service.js";

/**
 * Waits until nothing is left to happen: no deployment running in the given deployment groups, no
 * invocation of the service running or waiting for a retry, an empty launch queue, and no instance
 * of `groups` still launching; held for `quietSeconds`. Returns false if that never happens.
 */
export async function waitUntilQuiet(
  sandbox: Sandbox,
  service: ServiceDeployment,
  scope: { groups: string[]; deploymentGroups: string[] },
  options: { quietSeconds?: number; timeoutSeconds: number },
): Promise<boolean> {
  const { world } = sandbox;
  const busy = () => {
    const deploying = world.codeDeploy
      .active()
      .some((deployment) =>
        scope.deploymentGroups.includes(`${deployment.applicationName}/${deployment.deploymentGroupName}`),
      );
    const launching = scope.groups.some((name) =>
      [...world.autoScaling.group(name).instances].some((id) => {
        const instance = world.instance(id);
        return (
          !instance.terminated &&
          (instance.lifecycleState.startsWith("Pending") || instance.lifecycleState.startsWith("Terminating"))
        );
      }),
    );
    const functions = [service.launch, service.failure];
    const working =
      functions.some((fn) => fn.inFlight > 0 || fn.pendingEvents > 0) ||
      service.launchQueue.messages.length > 0 ||
      service.failureRetryQueue.messages.length > 0;
    const capacity = scope.groups.some((name) => {
      const group = world.autoScaling.group(name);
      return world.autoScaling.liveInstances(group).length !== group.desiredCapacity;
    });
    return deploying || launching || working || capacity;
  };
  const quietMs = (options.quietSeconds ?? 120) * 1000;
  const deadline = world.now() + options.timeoutSeconds * 1000;
  let quietSince: number | undefined;
  while (world.now() < deadline) {
    if (busy()) quietSince = undefined;
    else {
      quietSince ??= world.now();
      if (world.now() - quietSince >= quietMs) return true;
    }
    await sandbox.waitFor(() => false, { timeoutSeconds: 5, pollSeconds: 5 });
  }
  return false;
}
