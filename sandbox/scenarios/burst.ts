import { ASSUMED_RATE_LIMITS } from "../server/rates.js";
import { addGroupWithDeployments } from "./fleet.js";
import { percentiles, scopeInstances } from "./measure.js";
import { waitUntilQuiet } from "./settle.js";
import { baseSandboxOptions, type Scenario } from "./types.js";

/**
 * A large group scales from 0 at once while SSM and Auto Scaling throttle (ASSUMED_RATE_LIMITS):
 * does every instance still get a verified agent before its hook times out, with batched calls?
 */
export const burst: Scenario = {
  name: "burst",
  title: "A group scales from 0 to N at once under SSM and Auto Scaling throttling",
  defaultInstances: 100,
  sandboxOptions: (options, instances) => ({
    ...baseSandboxOptions(options, instances),
    traffic: { rateLimits: ASSUMED_RATE_LIMITS },
  }),
  async play({ sandbox, instances, note, deploy }) {
    const { world } = sandbox;
    const pair = addGroupWithDeployments(world, {
      name: "fleet",
      maxSize: instances * 2,
      image: { imageId: "ami-0base2026", bakedAgent: null },
    });
    const service = await deploy({ groups: ["fleet"], deploymentGroups: [pair] });
    const since = world.now();
    note(`burst: fleet scales from 0 to ${instances} (throttling: ${JSON.stringify(ASSUMED_RATE_LIMITS)})`);
    world.autoScaling.setDesiredCapacity("fleet", instances);
    await waitUntilQuiet(
      sandbox,
      service,
      { groups: ["fleet"], deploymentGroups: [pair] },
      { timeoutSeconds: 3 * 3600, quietSeconds: 60 },
    );
    const hookName = service.config.hook.name;
    return {
      service,
      scope: { groups: ["fleet"], hookName, deploymentGroups: [pair], since },
      extra: () => {
        const launched = scopeInstances(sandbox, { groups: ["fleet"], since });
        const calls = sandbox.counters;
        // The ideal for an instance: its own registration, install and verification, back to back.
        const overheads = launched.flatMap((instance) => {
          const action = world.autoScaling
            .actionsOf(instance.id)
            .find((candidate) => candidate.instanceId === instance.id && candidate.hookName === hookName);
          const install = world.ssm
            .invocationsOf(instance.id)
            .find(
              (invocation) =>
                invocation.instanceId === instance.id &&
                invocation.kind === "install" &&
                invocation.status === "Success",
            );
          const verify = world.ssm
            .invocationsOf(instance.id)
            .find(
              (invocation) =>
                invocation.instanceId === instance.id &&
                invocation.kind === "verify" &&
                invocation.status === "Success",
            );
          const completed = action?.completed;
          if (
            !action ||
            !completed ||
            completed.by !== "api" ||
            !install?.endedAt ||
            !install.startedAt ||
            !verify?.endedAt ||
            !verify.startedAt
          )
            return [];
          const registration = (instance.milestones.ssmOnline ?? action.startedAt) - action.startedAt;
          const ideal =
            Math.max(0, registration) +
            (install.endedAt - install.startedAt) +
            (verify.endedAt - verify.startedAt);
          return [(completed.at - action.startedAt) / ideal - 1];
        });
        return {
          rates: ASSUMED_RATE_LIMITS,
          ssmCallsPerInstance: Math.round((calls.total("SSM") / Math.max(1, launched.length)) * 100) / 100,
          autoScalingCallsPerInstance:
            Math.round((calls.total("AutoScaling") / Math.max(1, launched.length)) * 100) / 100,
          overheadP50: Math.round(percentiles(overheads.map((value) => value * 1000)).p50) / 1000,
        };
      },
      checks: (figures) => [
        {
          name: "every instance is in service with a verified agent",
          ok: figures.inService === instances && figures.verified === instances,
          detail: `${figures.inService}/${instances} in service, ${figures.verified} verified, ${figures.abandoned} abandoned`,
        },
        {
          name: "no launch deployment fails (CodeDeploy's own hook waits for the agent at most its agent wait)",
          ok: figures.launchDeploymentsFailed === 0 && figures.abandoned === 0,
          detail: `${figures.launchDeploymentsFailed} launch deployments failed, ${figures.abandoned} instances abandoned and replaced`,
        },
        {
          name: "no lifecycle heartbeat timeout under throttling",
          ok: figures.lifecycleTimeouts === 0,
          detail: `${figures.lifecycleTimeouts} timeouts, ${figures.throttled} throttled calls`,
        },
      ],
    };
  },
};
