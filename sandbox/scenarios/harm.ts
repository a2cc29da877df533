import type { ServiceDeployment } from "../service.js";
import { launchFailures } from "./do-no-harm.js";
import { addGroupWithDeployments } from "./fleet.js";
import { scopeInstances } from "./measure.js";
import { accountPackageVersions, OTHER_TEAM_PACKAGE, otherTeamInstalls } from "./other-team.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Scenario } from "./types.js";

/** The agent versions of the story: dev takes the latest, prod pins the one with the fix. */
export const LATEST_AGENT = "1.8.2";
export const PROD_PIN = "1.8.1";
const DEV_BAKED_AMI = "ami-0dev-agent181";
const PROD_BAKED_AMI = "ami-0prod-agent171";
const FIXED_AMI = "ami-0prod-agent-stopped";
/** Sweeps as often as a schedule can run, so they catch instances that only CodeDeploy's hook still holds. */
const SWEEP = { schedule: "rate(1 minute)", staleAfterSeconds: 20 };

/**
 * One account, everything else in it, and the rules of "first, do no harm" (docs/design.md):
 * - two stages of the service: dev (latest agent) and prod (pinned), each with its own groups and
 *   hook; neither touches the other's instances, and no instance gets two agent versions;
 * - `dev-warm` has a warm pool: instances enter it through the launch hook (Warmed:Pending:Wait,
 *   Origin EC2, Destination WarmPool), get the agent, are stopped, and leave it on scale-out (Pending:Wait,
 *   Origin WarmPool): on the way out the service only checks the agent;
 * - CodeDeploy's launch deployments run long (a slow ValidateService), so after the service's CONTINUE
 *   CodeDeploy's own hook still holds the instance in Pending:Wait while sweeps run every minute: the
 *   sweep finds them, the launch function sees its own action closed and sends nothing;
 * - another team installs the CloudWatch agent with AWS-ConfigureAWSPackage on every new instance;
 * - `dev-baked` runs an AMI whose agent (1.8.1) starts at boot and is older than dev's latest: the
 *   service names the AMI and never restarts the agent under CodeDeploy's launch deployment;
 * - `prod-baked` runs an AMI whose agent (1.7.1) is older than the fix: CodeDeploy's launch deployment
 *   fails on it before anyone can replace it (not the service's doing); the operator then ships an AMI
 *   whose agent is stopped, as CodeDeploy advises, and the service installs the pinned agent.
 */
export const harm: Scenario = {
  name: "harm",
  title: "Two stages, a warm pool, CodeDeploy's hook, another team and baked agents: no harm done",
  defaultInstances: 2,
  sandboxOptions: (options, instances) => {
    const base = baseSandboxOptions(options, instances);
    return {
      ...base,
      // Two stages' functions and five groups keep two cores busy: a slower clock keeps timings faithful.
      clockScale: options.clockScale ?? Math.max(0.02, base.clockScale),
      world: {
        ...base.world,
        ssm: {
          packageVersions: accountPackageVersions({
            AWSCodeDeployAgent: ["1.6.0", "1.7.1", "1.8.0", PROD_PIN, LATEST_AGENT],
          }),
        },
        codeDeploy: { ...base.world.codeDeploy, eventSeconds: { ValidateService: { min: 90, max: 150 } } },
      },
    };
  },
  async play({ sandbox, instances, note, deploy }) {
    const { world } = sandbox;
    const maxSize = instances * 3;
    const pairs = {
      devWeb: addGroupWithDeployments(world, {
        name: "dev-web",
        maxSize,
        image: { imageId: "ami-0base2026", bakedAgent: null },
      }),
      devBaked: addGroupWithDeployments(world, {
        name: "dev-baked",
        maxSize,
        image: { imageId: DEV_BAKED_AMI, bakedAgent: { version: PROD_PIN, running: true } },
      }),
      prodWeb: addGroupWithDeployments(world, {
        name: "prod-web",
        maxSize,
        image: { imageId: "ami-0base2026", bakedAgent: null },
      }),
      prodBaked: addGroupWithDeployments(world, {
        name: "prod-baked",
        maxSize,
        image: { imageId: PROD_BAKED_AMI, bakedAgent: { version: "1.7.1", running: true } },
      }),
    };
    // CodeDeploy does not deploy to warm pools (aws/aws-codedeploy-agent#390): no deployment group here.
    world.autoScaling.createGroup({
      name: "dev-warm",
      maxSize,
      image: { imageId: "ami-0base2026", bakedAgent: null },
    });
    const devGroups = ["dev-web", "dev-warm", "dev-baked"];
    const prodGroups = ["prod-web", "prod-baked"];
    const dev = await deploy(
      { groups: devGroups, deploymentGroups: [pairs.devWeb, pairs.devBaked], sweep: SWEEP },
      { stage: "dev" },
    );
    const prod = await deploy(
      { groups: prodGroups, deploymentGroups: [pairs.prodWeb, pairs.prodBaked], sweep: SWEEP },
      { stage: "prod" },
    );
    const services: ServiceDeployment[] = [dev, prod];
    const groups = [...devGroups, ...prodGroups];
    const deploymentGroups = Object.values(pairs);
    const otherTeam = otherTeamInstalls(world, groups);
    const since = world.now();

    note(
      `harm: two stages in one account: dev (latest agent) on ${devGroups.join(", ")}; prod (pinned ${PROD_PIN}) on ${prodGroups.join(", ")}; their sweeps run every minute`,
    );
    note(
      `harm: another team installs ${OTHER_TEAM_PACKAGE} with AWS-ConfigureAWSPackage on every new instance`,
    );
    note(
      `harm: dev-warm gets a warm pool of ${instances}; dev-web, prod-web, dev-baked (${DEV_BAKED_AMI}, agent 1.8.1 at boot) and prod-baked (${PROD_BAKED_AMI}, agent 1.7.1 at boot) scale from 0 to ${instances}`,
    );
    world.autoScaling.putWarmPool("dev-warm", { minSize: instances, maxGroupPreparedCapacity: instances });
    for (const name of ["dev-web", "prod-web", "dev-baked", "prod-baked"])
      world.autoScaling.setDesiredCapacity(name, instances);

    // Once a launch deployment has failed on prod's baked agent, the operator ships the AMI CodeDeploy
    // advises: the agent installed but stopped, so that only the launch hook's install starts one.
    let fixed = false;
    const unsubscribe = world.trace.subscribe((entry) => {
      if (fixed || entry.kind !== "deployment.failed" || entry.data?.group !== pairs.prodBaked) return;
      fixed = true;
      note(
        `harm: ${entry.deploymentId} failed on ${PROD_BAKED_AMI}'s agent; prod-baked moves to ${FIXED_AMI} (agent baked in, stopped)`,
      );
      world.autoScaling.group("prod-baked").image = {
        imageId: FIXED_AMI,
        bakedAgent: { version: "1.7.1", running: false },
      };
    });

    const pool = () => world.autoScaling.warmPoolInstances(world.autoScaling.group("dev-warm"));
    await sandbox.waitFor(
      () =>
        pool().length === instances &&
        pool().every((instance) => instance.lifecycleState === "Warmed:Stopped"),
      { timeoutSeconds: 3600 },
    );
    note(
      `harm: dev-warm's pool is warmed (${pool()
        .map((instance) => instance.id)
        .join(", ")} stopped); dev-warm scales from 0 to ${instances}, drawing on it`,
    );
    world.autoScaling.setDesiredCapacity("dev-warm", instances);
    await waitUntilQuiet(
      sandbox,
      services,
      { groups, deploymentGroups },
      { timeoutSeconds: 4 * 3600, quietSeconds: 600 },
    );
    unsubscribe();
    otherTeam.stop();

    const versionOf = (name: string) => (devGroups.includes(name) ? LATEST_AGENT : PROD_PIN);
    const launchDeployments = () =>
      [...world.codeDeploy.deployments.values()].filter(
        (deployment) => deployment.creator === "autoscaling" && deployment.createTime >= since,
      );
    const launched = scopeInstances(sandbox, { groups, since });
    const inService = launched.filter((instance) => instance.lifecycleState === "InService");
    return {
      service: dev,
      services,
      scope: {
        groups,
        hookName: dev.config.hook.name,
        otherHookNames: [prod.config.hook.name],
        deploymentGroups,
        since,
      },
      extra: ({ records, stages, harm: figures, care }) => ({
        otherTeamCommands: otherTeam.commands.size,
        launchDeploymentFailures: launchFailures(sandbox, launchDeployments(), records, stages, figures),
        bakedAgentReports: care.bakedAgentReports,
      }),
      checks: (figures, { harm: done, care, records, stages }) => {
        const wrongVersion = inService.filter(
          (instance) => instance.agent.version !== versionOf(instance.groupName ?? ""),
        );
        const warm = launched.filter((instance) => instance.groupName === "dev-warm");
        const entered = warm.filter((instance) =>
          world.autoScaling
            .actionsOf(instance.id)
            .some((action) => action.destination === "WarmPool" && action.completed?.result === "CONTINUE"),
        );
        const left = warm.filter((instance) => instance.milestones.leftWarmPool !== undefined);
        const web = launchDeployments().filter((deployment) =>
          [pairs.devWeb, pairs.prodWeb].includes(
            `${deployment.applicationName}/${deployment.deploymentGroupName}`,
          ),
        );
        // Their commands to instances that lived on (an abandoned launch takes its invocations with it).
        const theirs = [...otherTeam.commands]
          .filter(([instanceId]) => !world.instance(instanceId).terminated)
          .map(([, id]) => world.ssm.commands.get(id));
        const theirsOk = theirs.filter((command) =>
          command?.invocations.every((invocation) => invocation.status === "Success"),
        );
        const restartsIn = (...names: string[]) =>
          records.restarts.filter(
            (restart) =>
              restart.deployments.length > 0 &&
              names.includes(world.instance(restart.instanceId).groupName ?? ""),
          );
        const failures = launchFailures(sandbox, launchDeployments(), records, stages, done);
        const reported = (ami: string) =>
          Object.entries(care.bakedAgentReports)
            .filter(([key]) => key.startsWith(ami))
            .reduce((sum, [, count]) => sum + count, 0);
        const baked = (name: string) => launched.filter((instance) => instance.groupName === name);
        return [
          {
            name: "two stages: neither acts on the other's instances, and each instance runs its own stage's agent",
            ok:
              care.instancesTouchedByTwoStages === 0 &&
              care.instancesGivenTwoAgentVersions === 0 &&
              done.installsOutOfScope === 0 &&
              wrongVersion.length === 0 &&
              inService.length === groups.length * instances,
            detail: `${inService.length}/${groups.length * instances} in service (dev ${LATEST_AGENT}, prod ${PROD_PIN}); ${care.instancesTouchedByTwoStages} touched by both stages, ${care.instancesGivenTwoAgentVersions} given two agent versions, ${done.installsOutOfScope} installs out of scope, ${wrongVersion.length} with another stage's version`,
          },
          {
            name: "warm pool: the agent is installed on the way in and only checked on the way out",
            ok:
              entered.length >= 2 * instances &&
              left.length === instances &&
              left.every((instance) => instance.lifecycleState === "InService") &&
              care.leavingWarmPool.installs === 0 &&
              care.leavingWarmPool.checks >= instances &&
              pool().length === instances,
            detail: `${entered.length} entered the pool through dev's hook; ${left.length} left it (${left.filter((instance) => instance.lifecycleState === "InService").length} in service) with ${care.leavingWarmPool.checks} checks and ${care.leavingWarmPool.installs} installs; ${pool().length} warmed in the pool again`,
          },
          {
            name: "CodeDeploy's hook outlasting ours: the sweeps find those instances and no install goes into its launch deployment",
            ok:
              care.sweepFoundHeldByCodeDeploy > 0 &&
              care.installsAfterOwnHook === 0 &&
              restartsIn("dev-web", "prod-web").length === 0 &&
              web.length >= 2 * instances &&
              web.every((deployment) => deployment.status === "Succeeded"),
            detail: `the sweeps found ${care.sweepFoundHeldByCodeDeploy} instances held only by CodeDeploy's hook (${care.leftAloneForAnotherHook} left alone by the launch function); ${care.installsAfterOwnHook} installs sent after our hook; web launch deployments ${web.filter((deployment) => deployment.status === "Succeeded").length}/${web.length} succeeded`,
          },
          {
            name: `another team's ${OTHER_TEAM_PACKAGE} installs: neither followed nor counted`,
            ok:
              theirs.length > 0 &&
              theirsOk.length === theirs.length &&
              care.otherTeamsInstallsFollowed === 0 &&
              figures.duplicateInstalls === 0,
            detail: `${theirsOk.length}/${theirs.length} of their commands to instances that lived on succeeded; ${care.otherTeamsInstallsFollowed} followed by the service; ${figures.duplicateInstalls} duplicate agent installs`,
          },
          {
            name: `an AMI that bakes an outdated agent is reported (${DEV_BAKED_AMI}), and its agent never restarts under CodeDeploy's launch deployment`,
            ok:
              reported(DEV_BAKED_AMI) > 0 &&
              restartsIn("dev-baked").length === 0 &&
              baked("dev-baked").some((instance) => instance.lifecycleState === "InService"),
            detail: `${reported(DEV_BAKED_AMI)} launch outcomes name ${DEV_BAKED_AMI}; ${restartsIn("dev-baked").length} agent restarts under a launch deployment; dev-baked ${baked(
              "dev-baked",
            )
              .filter((instance) => instance.lifecycleState === "InService")
              .map((instance) => `${instance.id} ${instance.agent.version}`)
              .join(", ")}`,
          },
          {
            name: `an agent older than the fix (${PROD_BAKED_AMI}) fails CodeDeploy's launch deployments, never by the service's doing; prod-baked ends in service`,
            ok:
              failures.causedByService === 0 &&
              baked("prod-baked").filter((instance) => instance.lifecycleState === "InService").length ===
                instances,
            detail: `failed launch deployments: ${JSON.stringify(failures.byCause)}; ${failures.causedByService} caused by the service; ${reported(PROD_BAKED_AMI)} outcomes name ${PROD_BAKED_AMI}; ${restartsIn("prod-baked").length} agent restarts under a launch deployment; AMI ${fixed ? `moved to ${FIXED_AMI}` : "left as it was"}`,
          },
        ];
      },
    };
  },
};
