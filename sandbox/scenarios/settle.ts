import type { Sandbox } from "../sandbox.js";
import type { ServiceDeployment } from "../service.js";

/**
 * Waits until nothing is left to happen: no deployment running in the given deployment groups, no
 * invocation of the service (of any of its stages) running or waiting for a retry, empty launch
 * queues, and no instance of `groups` (or of their warm pools) still launching; held for
 * `quietSeconds`. Returns false if that never happens.
 */
export async function waitUntilQuiet(
  sandbox: Sandbox,
  service: ServiceDeployment | readonly ServiceDeployment[],
  scope: { groups: string[]; deploymentGroups: string[] },
  options: { quietSeconds?: number; timeoutSeconds: number },
): Promise<boolean> {
  const { world } = sandbox;
  const services = Array.isArray(service) ? service : [service];
  const busy = () => {
    const deploying = world.codeDeploy
      .active()
      .some((deployment) =>
        scope.deploymentGroups.includes(`${deployment.applicationName}/${deployment.deploymentGroupName}`),
      );
    const launching = scope.groups.some((name) => {
      const group = world.autoScaling.group(name);
      return [...group.instances, ...(group.warmPool?.instances ?? [])].some((id) => {
        const instance = world.instance(id);
        return !instance.terminated && /^(Warmed:)?(Pending|Terminating)/.test(instance.lifecycleState);
      });
    });
    const working = services.some(
      (deployed) =>
        // Only the paths the stage deploys (a stage without groups has no launch path).
        [
          ...(deployed.has.launch ? [deployed.launch] : []),
          ...(deployed.has.failure ? [deployed.failure] : []),
        ].some((fn) => fn.inFlight > 0 || fn.pendingEvents > 0) ||
        (deployed.has.launch && deployed.launchQueue.messages.length > 0) ||
        (deployed.has.failure && deployed.failureRetryQueue.messages.length > 0),
    );
    const capacity = scope.groups.some((name) => {
      const group = world.autoScaling.group(name);
      return (
        world.autoScaling.liveInstances(group).length !== group.desiredCapacity ||
        world.autoScaling.warmPoolMissing(group) > 0
      );
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
