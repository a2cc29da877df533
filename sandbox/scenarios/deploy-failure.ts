import { revisionKey } from "../world/codedeploy/records.js";
import { APPLICATION, addGroupWithDeployments, BROKEN_RELEASE, RELEASE_2 } from "./fleet.js";
import { isRedeploy } from "./measure.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Scenario } from "./types.js";

/**
 * The failure path, three ways at once:
 * - `api`: a long-lived instance with agent 1.7.1; the release fails on ApplicationStart; the service
 *   upgrades the agent and redeploys the same revision, which succeeds;
 * - `batch`: a current agent, but the release itself is broken (ValidateService fails): an
 *   application failure, which no agent upgrade cures, so no redeploy;
 * - `reports`: an agent that is stopped, and that dies whenever it starts a lifecycle event: the
 *   deployment fails for want of an agent, the service reinstalls it (it verifies as running) and
 *   redeploys, the redeploy fails the same way, and the chain stops at the redeploy cap.
 */
export const deployFailure: Scenario = {
  name: "deploy-failure",
  title:
    "An agent failure is upgraded and redeployed; an application failure is not; the cap holds across a chain",
  defaultInstances: 1,
  sandboxOptions: baseSandboxOptions,
  async play({ sandbox, instances, note, deploy }) {
    const { world } = sandbox;
    const pairs = {
      api: addGroupWithDeployments(world, {
        name: "api",
        maxSize: instances,
        image: { imageId: "ami-0base2026" },
      }),
      batch: addGroupWithDeployments(world, {
        name: "batch",
        maxSize: instances,
        image: { imageId: "ami-0base2026" },
      }),
      reports: addGroupWithDeployments(world, {
        name: "reports",
        maxSize: instances,
        image: { imageId: "ami-0base2026" },
      }),
    };
    for (let index = 0; index < instances; index++) {
      world.addRunningInstance("api", {
        agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
      });
      world.addRunningInstance("batch", {
        agent: {
          package: "AWSCodeDeployAgent",
          version: "1.8.1",
          running: true,
          installedByDistributor: true,
        },
      });
      const crashing = world.addRunningInstance("reports", {
        agent: {
          package: "AWSCodeDeployAgent",
          version: "1.8.1",
          running: false,
          installedByDistributor: true,
        },
      });
      crashing.faults.agentCrashesOnLifecycleEvent = true;
    }
    world.codeDeploy.markRevisionBroken(BROKEN_RELEASE);
    const service = await deploy({ groups: [], deploymentGroups: Object.values(pairs) });
    const cap = service.config.failure.maxRedeploys;

    note("user deployments: release 1.4.2 to api and reports, release 1.5.0-rc1 to batch");
    const originals = {
      api: world.codeDeploy.createDeployment({
        applicationName: APPLICATION,
        deploymentGroupName: "api-dg",
        revision: RELEASE_2,
        description: "release 1.4.2",
      }),
      batch: world.codeDeploy.createDeployment({
        applicationName: APPLICATION,
        deploymentGroupName: "batch-dg",
        revision: BROKEN_RELEASE,
        description: "release 1.5.0-rc1",
      }),
      reports: world.codeDeploy.createDeployment({
        applicationName: APPLICATION,
        deploymentGroupName: "reports-dg",
        revision: RELEASE_2,
        description: "release 1.4.2",
      }),
    };
    const since = world.now() - 1;
    await waitUntilQuiet(
      sandbox,
      service,
      { groups: [], deploymentGroups: Object.values(pairs) },
      { timeoutSeconds: 3 * 3600, quietSeconds: 600 },
    );

    const redeploysOf = (group: string) =>
      [...world.codeDeploy.deployments.values()].filter(
        (deployment) =>
          deployment.deploymentGroupName === `${group}-dg` && isRedeploy(deployment.description),
      );
    const apiInstances = [...world.autoScaling.group("api").instances].map((id) => world.instance(id));
    return {
      service,
      scope: {
        groups: [],
        hookName: service.config.hook.name,
        deploymentGroups: Object.values(pairs),
        since,
      },
      extra: () => ({
        // The CodeDeploy model's own harm counters, the ones this story checks; `harm` is the run's harm figure.
        codeDeployHarm: world.codeDeploy.harm.snapshot(),
        maxRedeploys: cap,
        deployments: Object.fromEntries(
          Object.entries(originals).map(([group, deployment]) => [
            group,
            {
              deploymentId: deployment.id,
              status: deployment.status,
              redeploys: redeploysOf(group).map((redeploy) => ({
                deploymentId: redeploy.id,
                status: redeploy.status,
              })),
            },
          ]),
        ),
      }),
      checks: () => [
        {
          name: "an agent failure: the agent is upgraded and the same revision redeployed successfully",
          ok:
            originals.api.status === "Failed" &&
            redeploysOf("api").length === 1 &&
            redeploysOf("api")[0]?.status === "Succeeded" &&
            revisionKey(redeploysOf("api")[0]?.revision) === revisionKey(originals.api.revision) &&
            apiInstances.every(
              (instance) => instance.agent.version === world.ssm.latestVersion("AWSCodeDeployAgent"),
            ),
          detail: `api: ${originals.api.id} ${originals.api.status}, redeploys ${
            redeploysOf("api")
              .map((deployment) => `${deployment.id} ${deployment.status}`)
              .join(", ") || "none"
          }, agents ${apiInstances.map((instance) => instance.agent.version).join(", ")}`,
        },
        {
          name: "an application failure is not redeployed",
          ok: originals.batch.status === "Failed" && redeploysOf("batch").length === 0,
          detail: `batch: ${originals.batch.id} ${originals.batch.status}, ${redeploysOf("batch").length} redeploys`,
        },
        {
          name: "the redeploy cap holds across a chain of failures",
          ok:
            originals.reports.status === "Failed" &&
            redeploysOf("reports").length <= cap &&
            redeploysOf("reports").every((deployment) => deployment.status === "Failed"),
          detail: `reports: ${originals.reports.id} ${originals.reports.status}, ${redeploysOf("reports").length} redeploys (cap ${cap})`,
        },
        {
          name: "no harm: no forbidden redeploy, no agent restarted under a deployment",
          ok: world.codeDeploy.harm.total === 0,
          detail: JSON.stringify(world.codeDeploy.harm.snapshot()),
        },
      ],
    };
  },
};
