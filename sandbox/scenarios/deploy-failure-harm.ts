import { sendCommandInGroups } from "../server/access.js";
import type { Deployment, RevisionLocation } from "../world/codedeploy/records.js";
import { revisionKey } from "../world/codedeploy/records.js";
import type { World } from "../world/world.js";
import { APPLICATION, addGroupWithDeployments, RELEASE_1, RELEASE_2 } from "./fleet.js";
import { isRedeploy } from "./measure.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Check, type Scenario, type ScenarioOptions } from "./types.js";

/**
 * The failure path around everything else a deployment group holds, each case in its own group:
 * - `web` (OneAtATime): the release fails on the first instance under agent 1.7.1 and CodeDeploy
 *   skips the others, which keep their 1.7.1; every instance is brought current before the
 *   redeploy, which succeeds;
 * - `bg` (blue/green): the release fails on the replacement instances; it is left alone;
 * - `rb` (automatic rollback on failure): CodeDeploy creates the rollback 5-15 s after the failure;
 *   no agent is restarted before or under it; the rollback fails on the old agent too, and its
 *   revision (the last good one) is redeployed once the agents are current;
 * - `busy`: a scale-out's launch deployment downloads a large bundle for ten minutes while the
 *   release fails (Lambda's own retries last about three); the redeploy waits for it on the retry
 *   queue and lands once it ends;
 * - `mixed`: one deployment group over two Auto Scaling groups, only one of them in the stage's
 *   scope; SSM refuses the agent commands for the other one's instance (the role's tag condition),
 *   which is reported while the rest is upgraded; the redeploy would reach that outdated agent, so
 *   there is none.
 * The world counts harm as it happens (world.codeDeploy.harm): the checks demand none.
 */
const LARGE_BASELINE: RevisionLocation = {
  revisionType: "S3",
  s3Location: {
    bucket: "shop-releases",
    key: "shop/shop-1.4.1-with-assets.zip",
    bundleType: "zip",
    eTag: "4a8a08f09d37b73795649038408b5f33",
  },
};
const OLD_AGENT = { package: "AWSCodeDeployAgent" as const, version: "1.7.1", running: true };
const CURRENT_AGENT = { ...OLD_AGENT, version: "1.8.1", installedByDistributor: true };

function sandboxOptions(options: ScenarioOptions, instances: number) {
  const base = baseSandboxOptions(options, instances);
  return {
    ...base,
    world: { codeDeploy: { ...base.world.codeDeploy, rollbackDelaySeconds: { min: 5, max: 15 } } },
  };
}

/** A deployment group whose last good revision is `baseline`, over `asgs`. */
function addDeploymentGroup(
  world: World,
  name: string,
  asgs: string[],
  extra: { baseline?: RevisionLocation; blueGreen?: boolean; deploymentConfigName?: string } = {},
): string {
  world.codeDeploy.createDeploymentGroup({
    applicationName: APPLICATION,
    name,
    autoScalingGroups: asgs,
    lastSuccessfulRevision: extra.baseline ?? RELEASE_1,
    deploymentConfigName: extra.deploymentConfigName,
    ...(extra.blueGreen
      ? { deploymentStyle: { deploymentType: "BLUE_GREEN", deploymentOption: "WITH_TRAFFIC_CONTROL" } }
      : {}),
  });
  return `${APPLICATION}/${name}`;
}

export const deployFailureHarm: Scenario = {
  name: "deploy-failure-harm",
  title:
    "The failure path does no harm: skipped instances upgraded first, blue/green and rollbacks left alone, a busy group waited for, an SSM refusal kept to its instance",
  defaultInstances: 2,
  sandboxOptions,
  async play({ sandbox, instances, note, deploy }) {
    const { world } = sandbox;
    const image = { imageId: "ami-0base2026" };
    const pairs = {
      web: addGroupWithDeployments(world, { name: "web", maxSize: instances + 1, image }),
      rb: addGroupWithDeployments(world, { name: "rb", maxSize: instances, image, autoRollback: true }),
    } as Record<string, string>;
    for (const name of ["bg-blue", "bg-green", "busy", "mixed", "legacy"]) {
      world.autoScaling.createGroup({ name, maxSize: instances + 1, image });
    }
    pairs.bg = addDeploymentGroup(world, "bg-dg", ["bg-blue"], { blueGreen: true });
    pairs.busy = addDeploymentGroup(world, "busy-dg", ["busy"], { baseline: LARGE_BASELINE });
    pairs.mixed = addDeploymentGroup(world, "mixed-dg", ["mixed", "legacy"], {
      deploymentConfigName: "CodeDeployDefault.AllAtOnce",
    });
    const add = (group: string, count: number, agent: typeof OLD_AGENT) =>
      Array.from({ length: count }, () => world.addRunningInstance(group, { agent: { ...agent } }));
    const web = add("web", instances + 1, OLD_AGENT);
    add("bg-blue", instances, CURRENT_AGENT);
    const green = add("bg-green", instances, OLD_AGENT);
    const rb = add("rb", instances, OLD_AGENT);
    add("busy", 1, OLD_AGENT);
    const [inScope] = add("mixed", 1, OLD_AGENT);
    const [outOfScope] = add("legacy", 1, OLD_AGENT);
    // The bundle the launch deployments of `busy` download takes ten minutes.
    world.codeDeploy.markRevisionSlow(LARGE_BASELINE, { DownloadBundle: { min: 600, max: 660 } });

    const groups = ["web", "bg-blue", "bg-green", "rb", "busy", "mixed"];
    const deploymentGroups = Object.values(pairs);
    const service = await deploy({ groups, deploymentGroups });
    // The roles' SendCommand condition (stacks/permissions.ts): instances of the groups in scope only.
    for (const fn of [service.launch, service.failure]) {
      sandbox.server.access.restrict(fn.spec.name, "SSM.SendCommand", sendCommandInGroups(groups));
    }

    note("release 1.4.2 to web, rb, busy and mixed; to the green fleet of bg; busy scales out meanwhile");
    const release = (group: string, extra: object = {}) =>
      world.codeDeploy.createDeployment({
        applicationName: APPLICATION,
        deploymentGroupName: group,
        revision: RELEASE_2,
        description: "release 1.4.2",
        ...extra,
      });
    const originals = {
      web: release("web-dg"),
      bg: release("bg-dg", { targetInstances: { autoScalingGroups: ["bg-green"] } }),
      rb: release("rb-dg"),
      busy: release("busy-dg"),
      mixed: release("mixed-dg"),
    };
    world.autoScaling.setDesiredCapacity("busy", 2, "the morning scale-out");
    const since = world.now() - 1;
    await waitUntilQuiet(
      sandbox,
      service,
      { groups, deploymentGroups },
      { timeoutSeconds: 3 * 3600, quietSeconds: 600 },
    );

    const deploymentsOf = (group: string) =>
      [...world.codeDeploy.deployments.values()].filter(
        (deployment) => deployment.deploymentGroupName === group && deployment.createTime >= since,
      );
    const redeploysOf = (group: string) =>
      deploymentsOf(group).filter((deployment) => isRedeploy(deployment.description));
    const describe = (deployments: Deployment[]) =>
      deployments
        .map((deployment) => `${deployment.id} ${deployment.creator} ${deployment.status}`)
        .join(", ") || "none";
    const latest = world.ssm.latestVersion("AWSCodeDeployAgent");
    const versions = (list: { agent: { version: string | null } }[]) =>
      list.map((instance) => instance.agent.version).join(", ");
    const harm = world.codeDeploy.harm;
    const failureFn = service.failure;
    // What reached the failure path's dead-letter queue about a deployment (Lambda's failure records).
    const dlq = (deployment: Deployment) =>
      failureFn.failureDestination.filter((record) => JSON.stringify(record).includes(deployment.id)).length +
      service.failureDeadLetterQueue.messages.filter((message) => message.body.includes(deployment.id))
        .length;

    const checks = (): Check[] => {
      const webTargets = originals.web.targets.map((target) => target.status);
      const webRedeploys = redeploysOf("web-dg");
      const rollback = world.codeDeploy.deployments.get(
        originals.rb.rollbackInfo?.rollbackDeploymentId ?? "",
      );
      const rbRedeploys = redeploysOf("rb-dg");
      const busyRedeploys = redeploysOf("busy-dg");
      const launches = deploymentsOf("busy-dg").filter((deployment) => deployment.creator === "autoscaling");
      const waitedSeconds = ((busyRedeploys[0]?.createTime ?? 0) - (originals.busy.completeTime ?? 0)) / 1000;
      const mixedRedeploys = redeploysOf("mixed-dg");
      return [
        {
          name: "OneAtATime: the skipped instances are brought current too, and the redeploy succeeds",
          ok:
            originals.web.status === "Failed" &&
            webTargets.filter((status) => status === "Failed").length === 1 &&
            webTargets.filter((status) => status === "Skipped").length === web.length - 1 &&
            webRedeploys.length === 1 &&
            webRedeploys[0]?.status === "Succeeded" &&
            web.every((instance) => instance.agent.version === latest),
          detail: `web: ${originals.web.id} targets ${webTargets.join(", ")}; redeploys ${describe(webRedeploys)}; agents ${versions(web)}`,
        },
        {
          name: "blue/green: the failure is left alone (no redeploy, green agents untouched)",
          ok:
            originals.bg.status === "Failed" &&
            redeploysOf("bg-dg").length === 0 &&
            green.every((instance) => instance.agent.version === "1.7.1"),
          detail: `bg: ${originals.bg.id} ${originals.bg.status}; redeploys ${describe(redeploysOf("bg-dg"))}; green agents ${versions(green)}`,
        },
        {
          name: "rollback: nothing races it; when the old agent fails it too, its revision is redeployed",
          ok:
            originals.rb.status === "Failed" &&
            rollback?.creator === "codeDeployRollback" &&
            rollback.status === "Failed" &&
            rbRedeploys.length === 1 &&
            revisionKey(rbRedeploys[0]?.revision) === revisionKey(RELEASE_1) &&
            rbRedeploys[0]?.status === "Succeeded" &&
            rb.every((instance) => instance.agent.version === latest),
          detail: `rb: ${describe(deploymentsOf("rb-dg"))}; agents ${versions(rb)}`,
        },
        {
          name: "busy group: the redeploy waits out a launch deployment of more than three minutes, then lands",
          ok:
            launches.length > 0 &&
            busyRedeploys.length === 1 &&
            busyRedeploys[0]?.status === "Succeeded" &&
            waitedSeconds > 180 &&
            dlq(originals.busy) === 0,
          detail: `busy: ${describe(deploymentsOf("busy-dg"))}; redeploy ${Math.round(waitedSeconds)} s after the failure; in the failure DLQ ${dlq(originals.busy)}`,
        },
        {
          name: "SSM refuses one instance: it is reported, the others are upgraded, nothing redeploys onto its old agent",
          ok:
            mixedRedeploys.length === 0 &&
            inScope?.agent.version === latest &&
            outOfScope?.agent.version === "1.7.1" &&
            (sandbox.counters.errors["SSM.SendCommand:AccessDeniedException"] ?? 0) > 0 &&
            notUpgradedReasons(failureFn.invocations, outOfScope?.id).some((reason) =>
              reason.includes("AccessDeniedException"),
            ) &&
            dlq(originals.mixed) === 0,
          detail: `mixed: ${describe(deploymentsOf("mixed-dg"))}; agents ${inScope?.agent.version} (in scope), ${outOfScope?.agent.version} (out of scope)`,
        },
        {
          name: "no harm: no forbidden redeploy, no agent restarted under a deployment",
          ok: harm.total === 0,
          detail: JSON.stringify(harm.snapshot()),
        },
      ];
    };
    return {
      service,
      scope: { groups, hookName: service.config.hook.name, deploymentGroups, since },
      // The CodeDeploy model's own harm counters, the ones this story checks; `harm` is the run's harm figure.
      extra: () => ({ codeDeployHarm: harm.snapshot() }),
      checks,
    };
  },
};

/** What the failure function's reports said about an instance it did not upgrade. */
function notUpgradedReasons(invocations: { result?: unknown }[], instanceId: string | undefined): string[] {
  const reports = invocations.flatMap(({ result }) => {
    const value = result as { deployments?: unknown[] } | undefined;
    return value?.deployments ?? (value ? [value] : []);
  }) as { notUpgraded?: { instanceId: string; reason: string }[] }[];
  return reports.flatMap((report) =>
    (report.notUpgraded ?? []).filter((item) => item.instanceId === instanceId).map((item) => item.reason),
  );
}
