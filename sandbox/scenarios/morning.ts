import { APPLICATION, addGroupWithDeployments, RELEASE_2 } from "./fleet.js";
import { measure, scopeInstances } from "./measure.js";
import { baseSandboxOptions, type Scenario } from "./types.js";

/**
 * The morning of the incident, twice side by side. Two groups of N scale from 0 at the same moment:
 * - `legacy-web` runs without the service, on an AMI whose baked agent (1.6.0) is older than the fix:
 *   CodeDeploy's launch deployments fail on ApplicationStart (tomcat's start script) and Auto Scaling
 *   replaces the instances, again and again;
 * - `web` runs with the service, on an AMI without an agent: every instance gets a current agent,
 *   verified, before it enters service, and its launch deployments succeed.
 * Then a user deployment to `api`, a long-lived instance with an old agent (1.7.1), fails the same way,
 * and the failure path upgrades the agent and redeploys the same revision.
 */
export const morning: Scenario = {
  name: "morning",
  title:
    "Two groups scale from 0: without the service (outdated baked agent) and with it; then a deployment repaired",
  defaultInstances: 4,
  sandboxOptions: baseSandboxOptions,
  async play({ sandbox, instances, note, deploy }) {
    const { world } = sandbox;
    const legacyPair = addGroupWithDeployments(world, {
      name: "legacy-web",
      maxSize: instances * 2,
      image: { imageId: "ami-0legacy16agent", bakedAgent: { version: "1.6.0", running: true } },
    });
    const webPair = addGroupWithDeployments(world, {
      name: "web",
      maxSize: instances * 2,
      image: { imageId: "ami-0base2026", bakedAgent: null },
    });
    const apiPair = addGroupWithDeployments(world, {
      name: "api",
      maxSize: 2,
      image: { imageId: "ami-0base2026" },
    });
    const longLived = world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
    });
    const service = await deploy({ groups: ["web"], deploymentGroups: [webPair, apiPair] });
    const hookName = service.config.hook.name;

    const since = world.now();
    note(
      `morning: legacy-web (no service, baked agent 1.6.0) and web (service, no baked agent) scale from 0 to ${instances}`,
    );
    world.autoScaling.setDesiredCapacity("legacy-web", instances);
    world.autoScaling.setDesiredCapacity("web", instances);

    const web = () => scopeInstances(sandbox, { groups: ["web"], since });
    const legacy = () => scopeInstances(sandbox, { groups: ["legacy-web"], since });
    await sandbox.waitFor(
      () =>
        web().filter((instance) => instance.lifecycleState === "InService").length >= instances &&
        !web().some((instance) => !instance.terminated && instance.lifecycleState.startsWith("Pending")) &&
        legacy().filter((instance) => instance.milestones.abandoned !== undefined).length >= instances,
      { timeoutSeconds: 2 * 3600 },
    );
    note("legacy-web: every launch deployment failed and its instances were replaced; scaling it back to 0");
    world.autoScaling.setDesiredCapacity("legacy-web", 0);

    note(`user deployment of ${RELEASE_2.s3Location?.key} to api (${longLived.id} runs agent 1.7.1)`);
    const original = world.codeDeploy.createDeployment({
      applicationName: APPLICATION,
      deploymentGroupName: "api-dg",
      revision: RELEASE_2,
      description: "release 1.4.2",
    });
    const redeployed = () =>
      [...world.codeDeploy.deployments.values()].filter((deployment) =>
        deployment.description?.includes(`redeploy of ${original.id}`),
      );
    await sandbox.waitFor(
      () =>
        original.status === "Succeeded" ||
        redeployed().some(
          (deployment) => deployment.status === "Succeeded" || deployment.status === "Failed",
        ),
      { timeoutSeconds: 3600 },
    );

    const legacyFigures = () =>
      measure(sandbox, { groups: ["legacy-web"], hookName, deploymentGroups: [legacyPair], since });
    return {
      service,
      scope: { groups: ["web"], hookName, deploymentGroups: [webPair, apiPair], since },
      extra: () => {
        const figures = legacyFigures();
        return {
          withoutService: {
            group: "legacy-web",
            instances: figures.instances,
            inService: figures.inService,
            launchDeploymentsFailed: figures.launchDeploymentsFailed,
            replaced: figures.abandoned,
          },
          userDeployment: {
            deploymentId: original.id,
            status: original.status,
            redeployments: redeployed().map((deployment) => ({
              deploymentId: deployment.id,
              status: deployment.status,
            })),
          },
        };
      },
      checks: (figures) => {
        const other = legacyFigures();
        const startFailures = [...world.codeDeploy.deployments.values()].filter(
          (deployment) =>
            deployment.deploymentGroupName === "legacy-web-dg" &&
            deployment.creator === "autoscaling" &&
            deployment.targets.some((target) =>
              target.lifecycleEvents.some(
                (event) =>
                  event.lifecycleEventName === "ApplicationStart" &&
                  event.diagnostics?.errorCode === "ScriptFailed",
              ),
            ),
        ).length;
        const repaired = redeployed().find((deployment) => deployment.status === "Succeeded");
        return [
          {
            name: "without the service, launch deployments fail on ApplicationStart and instances are replaced",
            ok:
              other.launchDeploymentsFailed >= instances &&
              startFailures >= instances &&
              other.abandoned >= instances &&
              other.inService === 0,
            detail: `legacy-web: ${other.launchDeploymentsFailed} launch deployments failed (${startFailures} with ScriptFailed on ApplicationStart), ${other.abandoned} instances replaced, ${other.inService} in service`,
          },
          {
            name: "with the service, every instance is in service with a current, verified agent",
            ok: figures.inService === instances && figures.verified === instances && figures.abandoned === 0,
            detail: `web: ${figures.inService}/${instances} in service, ${figures.verified} verified, ${figures.abandoned} abandoned`,
          },
          {
            name: "with the service, launch deployments succeed",
            ok: figures.launchDeploymentsFailed === 0 && figures.launchDeploymentsSucceeded >= instances,
            detail: `web: ${figures.launchDeploymentsSucceeded} launch deployments succeeded, ${figures.launchDeploymentsFailed} failed`,
          },
          {
            name: "a deployment broken by an old agent is repaired: agent upgraded, same revision redeployed",
            ok:
              original.status === "Failed" &&
              repaired !== undefined &&
              longLived.agent.version === world.ssm.latestVersion("AWSCodeDeployAgent"),
            detail: `${original.id} ${original.status}; redeploy ${repaired ? `${repaired.id} Succeeded` : "none succeeded"}; ${longLived.id} agent ${longLived.agent.version}`,
          },
        ];
      },
    };
  },
};
