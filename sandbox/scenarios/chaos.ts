import { ASSUMED_RATE_LIMITS } from "../server/rates.js";
import { APPLICATION, addGroupWithDeployments, RELEASE_2 } from "./fleet.js";
import { hasVerifiedAgent, redeployOriginal, scopeInstances } from "./measure.js";
import { accountPackageVersions, otherTeamInstalls } from "./other-team.js";
import { describeAvoidable } from "./recovery.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Scenario } from "./types.js";

/**
 * The rest of the account in the chaos run, a few instances each: a second stage with its own group,
 * a group with a warm pool, a group whose AMI starts an outdated agent at boot, another team's
 * Distributor installs on every new instance, and CodeDeploy launch deployments that outlast the
 * service's hook while the sweeps run every minute.
 */
export const CHAOS_NEIGHBOURS = {
  secondStage: { stage: "prod", group: "prod-fleet", instances: 1 },
  warmPool: { group: "warm", poolSize: 1, instances: 1 },
  bakedAgent: { group: "baked", imageId: "ami-0baked171", agentVersion: "1.7.1", instances: 1 },
  otherTeamPackage: "AmazonCloudWatchAgent",
  sweep: { schedule: "rate(1 minute)", staleAfterSeconds: 20 },
  validateServiceSeconds: { min: 60, max: 120 },
};

/** The fault model of the chaos run, stated in its output. */
export const CHAOS_FAULTS = {
  eventsDeliveredTwice: 1,
  eventsDropped: 0.05,
  serverErrors: {
    "SSM.*": 0.02,
    "AutoScaling.*": 0.02,
    "CodeDeploy.*": 0.02,
    "DynamoDB.*": 0.01,
    "SQS.*": 0.01,
  },
  invocationsCutOff: 0.05,
  neverRegister: 0.05,
  installFails: 0.1,
  installSucceedsWithoutAgent: 0.05,
  terminatedMidInstall: 0.05,
};

/**
 * How long the run may take to settle. An instance let in without an agent (it never registered with
 * SSM, or every install failed) waits for CodeDeploy's launch deployment to give up on the agent, is
 * abandoned and replaced, and its replacement can meet the same fate: with CodeDeploy's one-hour wait a
 * chain of three such launches outlasts four hours, and a run cut short there leaves the last one in
 * Pending:Wait on CodeDeploy's hook, lost to the run though nothing of the service holds it.
 */
function settleSeconds(agentWaitSeconds = 300): number {
  // Each link: the launch path's registration wait (600 s by default), then CodeDeploy's wait for the agent.
  return Math.max(4 * 3600, 6 * (agentWaitSeconds + 600));
}

/**
 * Everything at once: duplicated and dropped events (the sweep must find what was dropped),
 * throttling and 5xx answers, invocations cut off mid-install, instances terminated mid-install or
 * never registering, failed installs and installs that report Success with no running agent, and a
 * deployment group busy with a launch when its redeploy is due; and around the fleet the rest of an
 * account (CHAOS_NEIGHBOURS). Every instance must end in service with a verified agent or abandoned
 * with a reason; nothing lost, no duplicate install, no lifecycle action left waiting, redeploys
 * within the cap, and no harm done (sandbox/scenarios/harm-watch.ts).
 */
export const chaos: Scenario = {
  name: "chaos",
  title: "Faults everywhere: nothing may be lost, installed twice or left waiting",
  defaultInstances: 20,
  sandboxOptions: (options, instances) => ({
    ...baseSandboxOptions(options, instances),
    traffic: { rateLimits: ASSUMED_RATE_LIMITS, errorRates: CHAOS_FAULTS.serverErrors },
    events: {
      duplicateProbability: CHAOS_FAULTS.eventsDeliveredTwice,
      dropProbability: CHAOS_FAULTS.eventsDropped,
      delaySeconds: { min: 0, max: 5 },
    },
    lambda: { cutOffProbability: CHAOS_FAULTS.invocationsCutOff },
    world: {
      ssm: {
        installFailureProbability: CHAOS_FAULTS.installFails,
        installSucceedsWithoutAgentProbability: CHAOS_FAULTS.installSucceedsWithoutAgent,
        packageVersions: accountPackageVersions(),
      },
      codeDeploy: {
        ...baseSandboxOptions(options, instances).world.codeDeploy,
        eventSeconds: { ValidateService: CHAOS_NEIGHBOURS.validateServiceSeconds },
      },
    },
  }),
  async play({ sandbox, instances, options, note, deploy }) {
    const { world } = sandbox;
    const fleetPair = addGroupWithDeployments(world, {
      name: "fleet",
      maxSize: instances * 2,
      image: {
        imageId: "ami-0base2026",
        bakedAgent: null,
        neverRegistersProbability: CHAOS_FAULTS.neverRegister,
      },
    });
    const apiPair = addGroupWithDeployments(world, {
      name: "api",
      maxSize: 3,
      image: { imageId: "ami-0base2026-agent181", bakedAgent: { version: "1.8.1", running: true } },
    });
    world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
    });
    const { secondStage, warmPool, bakedAgent, sweep } = CHAOS_NEIGHBOURS;
    const bakedPair = addGroupWithDeployments(world, {
      name: bakedAgent.group,
      maxSize: 4,
      image: {
        imageId: bakedAgent.imageId,
        bakedAgent: { version: bakedAgent.agentVersion, running: true },
      },
    });
    // CodeDeploy does not deploy to warm pools (aws/aws-codedeploy-agent#390): no deployment group.
    world.autoScaling.createGroup({
      name: warmPool.group,
      maxSize: 4,
      image: { imageId: "ami-0base2026", bakedAgent: null },
    });
    const prodPair = addGroupWithDeployments(world, {
      name: secondStage.group,
      maxSize: 4,
      image: { imageId: "ami-0base2026", bakedAgent: null },
    });
    const ours = ["fleet", warmPool.group, bakedAgent.group];
    const service = await deploy({
      groups: ours,
      deploymentGroups: [fleetPair, apiPair, bakedPair],
      sweep,
    });
    const prod = await deploy(
      { groups: [secondStage.group], deploymentGroups: [prodPair], sweep },
      { stage: secondStage.stage },
    );
    const groups = ["fleet", "api", warmPool.group, bakedAgent.group, secondStage.group];
    const deploymentGroups = [fleetPair, apiPair, bakedPair, prodPair];
    const otherTeam = otherTeamInstalls(world, ["fleet", warmPool.group, secondStage.group]);
    const since = world.now();

    // Terminates some instances while their install runs (a Spot interruption, a failed status check).
    const decided = new Set<string>();
    const monkey = world.scheduler.every(10_000, () => {
      for (const instance of scopeInstances(sandbox, { groups: ["fleet"], since })) {
        if (
          decided.has(instance.id) ||
          instance.lifecycleState !== "Pending:Wait" ||
          instance.milestones.installSent === undefined
        )
          continue;
        decided.add(instance.id);
        if (!world.rng.fork(`monkey:${instance.id}`).chance(CHAOS_FAULTS.terminatedMidInstall)) continue;
        note(`chaos: terminating ${instance.id} in the middle of its install`);
        world.autoScaling.terminate(instance, "fault");
      }
    });
    // When the user deployment fails, a scale-out starts a launch deployment in the same group, so the
    // group is busy when the service wants to redeploy.
    let original: ReturnType<typeof world.codeDeploy.createDeployment> | undefined;
    const unsubscribe = world.trace.subscribe((entry) => {
      if (entry.kind === "deployment.failed" && entry.deploymentId === original?.id) {
        note("chaos: api scales out while its failed deployment awaits the service");
        world.autoScaling.setDesiredCapacity("api", 2);
      }
    });
    // Once a launch deployment fails on the baked agent, the AMI is fixed as CodeDeploy advises:
    // the agent baked in but stopped, started only by the service's install.
    let bakedFixed = false;
    const fixBakedAmi = world.trace.subscribe((entry) => {
      if (bakedFixed || entry.kind !== "deployment.failed" || entry.data?.group !== bakedPair) return;
      bakedFixed = true;
      note(
        `chaos: a launch deployment failed on ${bakedAgent.imageId}'s agent; ${bakedAgent.group} moves to an AMI whose agent is stopped`,
      );
      world.autoScaling.group(bakedAgent.group).image = {
        imageId: "ami-0baked-stopped",
        bakedAgent: { version: bakedAgent.agentVersion, running: false },
      };
    });
    note(
      `chaos: fleet scales from 0 to ${instances}; a release goes to api; faults ${JSON.stringify(CHAOS_FAULTS)}`,
    );
    note(
      `chaos: beside it ${secondStage.group} (stage ${secondStage.stage}), ${bakedAgent.group} (${bakedAgent.imageId}, agent ${bakedAgent.agentVersion} at boot) and ${warmPool.group} (a warm pool of ${warmPool.poolSize}); another team installs ${CHAOS_NEIGHBOURS.otherTeamPackage} on new instances`,
    );
    world.autoScaling.putWarmPool(warmPool.group, {
      minSize: warmPool.poolSize,
      maxGroupPreparedCapacity: warmPool.poolSize,
    });
    world.autoScaling.setDesiredCapacity("fleet", instances);
    world.autoScaling.setDesiredCapacity(secondStage.group, secondStage.instances);
    world.autoScaling.setDesiredCapacity(bakedAgent.group, bakedAgent.instances);
    // The warm pool's instances leave it once they are prepared (or the pool gave up on them).
    const pool = world.autoScaling.group(warmPool.group);
    const drawOnPool = world.scheduler.every(30_000, () => {
      if (pool.desiredCapacity > 0) return;
      const members = world.autoScaling.warmPoolInstances(pool);
      if (
        members.length > 0 &&
        members.every(
          (instance) =>
            instance.lifecycleState.startsWith("Warmed:") &&
            !instance.lifecycleState.startsWith("Warmed:Pending"),
        )
      ) {
        note(`chaos: ${warmPool.group} scales to ${warmPool.instances}, drawing on its warm pool`);
        world.autoScaling.setDesiredCapacity(warmPool.group, warmPool.instances);
      }
    });
    original = world.codeDeploy.createDeployment({
      applicationName: APPLICATION,
      deploymentGroupName: "api-dg",
      revision: RELEASE_2,
      description: "release 1.4.2",
    });
    await sandbox.waitFor(() => pool.desiredCapacity > 0, { timeoutSeconds: 3600 });
    await waitUntilQuiet(
      sandbox,
      [service, prod],
      { groups, deploymentGroups },
      { timeoutSeconds: settleSeconds(options.agentWaitSeconds), quietSeconds: 900 },
    );
    monkey.cancel();
    drawOnPool.cancel();
    unsubscribe();
    fixBakedAmi();
    otherTeam.stop();
    const neighbours = () =>
      [secondStage, warmPool, bakedAgent].map(({ group, instances: wanted }) => {
        const launched = scopeInstances(sandbox, { groups: [group], since });
        const inService = launched.filter((instance) => instance.lifecycleState === "InService");
        return {
          group,
          wanted,
          inService: inService.length,
          verified: inService.filter((instance) => hasVerifiedAgent(sandbox, instance)).length,
          abandoned: launched.filter((instance) => instance.milestones.abandoned !== undefined).length,
        };
      });
    const cap = service.config.failure.maxRedeploys;
    const redeploys = () =>
      [...world.codeDeploy.deployments.values()].filter(
        (deployment) => original !== undefined && redeployOriginal(deployment.description) === original.id,
      );
    return {
      service,
      services: [service, prod],
      scope: {
        groups: ["fleet"],
        hookName: service.config.hook.name,
        deploymentGroups: [fleetPair, apiPair],
        since,
      },
      extra: () => ({
        faults: CHAOS_FAULTS,
        neighbours: neighbours(),
        otherTeamCommands: otherTeam.commands.size,
        bakedAmiFixed: bakedFixed,
        rates: ASSUMED_RATE_LIMITS,
        events: { ...sandbox.bus.stats },
        launchDeadLetters: service.launchDeadLetterQueue.messages.length,
        failureDestination: service.failure.failureDestination.length,
        userDeployment: {
          deploymentId: original?.id,
          status: original?.status,
          redeploys: redeploys().map((deployment) => ({
            deploymentId: deployment.id,
            status: deployment.status,
          })),
        },
      }),
      checks: (figures, { care }) => [
        {
          name: "every instance ends in service with a verified agent, or abandoned with a reason",
          ok: figures.lost === 0 && figures.inService === instances && figures.verified === instances,
          detail: `${figures.inService}/${instances} in service, ${figures.verified} verified, ${figures.abandoned} abandoned, ${figures.lost} lost${figures.lostInstances.length ? `: ${figures.lostInstances.map((item) => `${item.instanceId} ${item.why}`).join("; ")}` : ""}`,
        },
        {
          name: "the rest of the account: the second stage's, the warm pool's and the baked AMI's groups end in service with verified agents",
          ok: neighbours().every(
            (group) => group.inService === group.wanted && group.verified === group.wanted,
          ),
          detail: neighbours()
            .map(
              (group) =>
                `${group.group} ${group.verified}/${group.wanted} verified in service, ${group.abandoned} abandoned`,
            )
            .join("; "),
        },
        {
          name: "each stage keeps to its own instances, to its own hook and to its own package",
          ok:
            care.instancesTouchedByTwoStages === 0 &&
            care.instancesGivenTwoAgentVersions === 0 &&
            care.installsAfterOwnHook === 0 &&
            care.leavingWarmPool.needlessInstalls === 0 &&
            care.otherTeamsInstallsFollowed === 0,
          detail: `${care.instancesTouchedByTwoStages} instances touched by both stages, ${care.instancesGivenTwoAgentVersions} given two agent versions, ${care.installsAfterOwnHook} installs after our hook let go (sweeps found ${care.sweepFoundHeldByCodeDeploy} held by CodeDeploy's), ${care.leavingWarmPool.installs} installs (${care.leavingWarmPool.needlessInstalls} needless) and ${care.leavingWarmPool.checks} checks leaving the warm pool, ${care.otherTeamsInstallsFollowed} of ${otherTeam.commands.size} other-team installs followed`,
        },
        {
          name: "no launch deployment failed for want of an agent on an instance the service could have given one",
          ok: figures.avoidableLaunchDeploymentFailures === 0,
          detail: `${figures.avoidableLaunchDeploymentFailures} avoidable of ${figures.launchDeploymentsFailed} failed launch deployments${describeAvoidable(figures.avoidableLaunchDeploymentFailureInstances)}`,
        },
        {
          name: "redeploys never above the cap",
          ok: redeploys().length <= cap,
          detail: `${redeploys().length} redeploys of ${original?.id} (cap ${cap})`,
        },
      ],
    };
  },
};
