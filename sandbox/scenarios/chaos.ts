import { ASSUMED_RATE_LIMITS } from "../server/rates.js";
import { APPLICATION, addGroupWithDeployments, RELEASE_2 } from "./fleet.js";
import { REDEPLOY_MARKER, scopeInstances } from "./measure.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Scenario } from "./types.js";

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
 * Everything at once: duplicated and dropped events (the sweep must find what was dropped),
 * throttling and 5xx answers, invocations cut off mid-install, instances terminated mid-install or
 * never registering, failed installs and installs that report Success with no running agent, and a
 * deployment group busy with a launch when its redeploy is due. Every instance must end in service
 * with a verified agent or abandoned with a reason; nothing lost, no duplicate install, no lifecycle
 * action left waiting, redeploys within the cap.
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
      },
      ...baseSandboxOptions(options, instances).world,
    },
  }),
  async play({ sandbox, instances, note, deploy }) {
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
    const service = await deploy({ groups: ["fleet"], deploymentGroups: [fleetPair, apiPair] });
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
    note(
      `chaos: fleet scales from 0 to ${instances}; a release goes to api; faults ${JSON.stringify(CHAOS_FAULTS)}`,
    );
    world.autoScaling.setDesiredCapacity("fleet", instances);
    original = world.codeDeploy.createDeployment({
      applicationName: APPLICATION,
      deploymentGroupName: "api-dg",
      revision: RELEASE_2,
      description: "release 1.4.2",
    });
    await waitUntilQuiet(
      sandbox,
      service,
      { groups: ["fleet", "api"], deploymentGroups: [fleetPair, apiPair] },
      { timeoutSeconds: 4 * 3600, quietSeconds: 900 },
    );
    monkey.cancel();
    unsubscribe();
    const cap = service.config.failure.maxRedeploys;
    const redeploys = () =>
      [...world.codeDeploy.deployments.values()].filter((deployment) =>
        deployment.description?.includes(`${REDEPLOY_MARKER}${original?.id}`),
      );
    return {
      service,
      scope: {
        groups: ["fleet"],
        hookName: service.config.hook.name,
        deploymentGroups: [fleetPair, apiPair],
        since,
      },
      extra: () => ({
        faults: CHAOS_FAULTS,
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
      checks: (figures) => [
        {
          name: "every instance ends in service with a verified agent, or abandoned with a reason",
          ok: figures.lost === 0 && figures.inService === instances && figures.verified === instances,
          detail: `${figures.inService}/${instances} in service, ${figures.verified} verified, ${figures.abandoned} abandoned, ${figures.lost} lost${figures.lostInstances.length ? `: ${figures.lostInstances.map((item) => `${item.instanceId} ${item.why}`).join("; ")}` : ""}`,
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
