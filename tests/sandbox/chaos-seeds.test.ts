import { describe, expect, it } from "vitest";
import { CHAOS_NEIGHBOURS, chaos } from "../../sandbox/scenarios/chaos.js";
import { isRedeploy, redeployOriginal, scopeInstances } from "../../sandbox/scenarios/measure.js";
import { runScenario } from "../../sandbox/scenarios/run.js";
import { HARM_CHECK, isKnownGapRestart } from "./helpers.js";

/**
 * The chaos scenario (every event twice, 5% dropped, throttling, 5xx answers, invocations cut off
 * mid-install, instances terminated mid-install or never registering, failed installs, installs that
 * report Success with no running agent, a deployment group busy when its redeploy is due) on a small
 * fleet, for 20 seeds: the same invariants must hold for every one. Beside the fleet, one instance
 * each of the rest of an account (CHAOS_NEIGHBOURS): a second stage, a warm pool, an AMI that starts
 * an outdated agent at boot, another team's Distributor installs, and CodeDeploy launch deployments
 * outlasting the service's hook under a sweep every minute; the harm figure must stay 0. The clock
 * skips the stretches in which nothing can happen (sandbox/runtime/idle-skip.ts), so twenty long stories fit
 * in about a minute.
 */
const SEEDS = Array.from({ length: 20 }, (_, index) => index + 1);
const INSTANCES = 6;
const CLOCK_SCALE = 0.2;

interface LaunchOutcome {
  instanceId: string;
  outcome: string;
  reason: string;
}

describe("the chaos scenario, seed after seed", () => {
  it.each(SEEDS)(
    "loses nothing, installs nothing twice and leaves nothing waiting (seed %i)",
    async (seed) => {
      const { summary, sandbox, startedAt } = await runScenario(chaos, {
        instances: INSTANCES,
        seed,
        clockScale: CLOCK_SCALE,
        keepOpen: true,
      });
      try {
        const { world } = sandbox;
        const launch = sandbox.runtime.functions.get("agentfix-sandbox-launch");
        const hookName = String(launch?.spec.env?.LIFECYCLE_HOOK_NAME);
        const outcomes = (launch?.invocations ?? []).flatMap(
          (invocation) => (invocation.result as { instances?: LaunchOutcome[] } | undefined)?.instances ?? [],
        );

        // Every instance ends in service with a verified agent, or abandoned with a logged reason.
        expect(summary.lostInstances).toEqual([]);
        expect(summary.lost).toBe(0);
        const fleet = scopeInstances(sandbox, { groups: ["fleet"], since: startedAt });
        const abandonedByUs = fleet.filter((instance) => instance.abandonReason === `ABANDON by ${hookName}`);
        for (const instance of abandonedByUs) {
          const decision = outcomes.find(
            (outcome) => outcome.instanceId === instance.id && outcome.outcome === "ABANDON",
          );
          expect(decision?.reason, `why ${instance.id} was abandoned`).toMatch(/\w+/);
        }
        for (const instance of fleet.filter((candidate) => candidate.lifecycleState === "InService")) {
          expect(instance.milestones.verified, `${instance.id} in service unverified`).toBeDefined();
        }
        expect(summary.inService).toBe(INSTANCES);

        // No CodeDeploy launch deployment failed for want of an agent the service could have installed in time.
        expect(summary.avoidableLaunchDeploymentFailureInstances).toEqual([]);
        expect(summary.avoidableLaunchDeploymentFailures).toBe(0);
        expect(summary.duplicateInstalls).toBe(0);
        expect(summary.waitingActions).toBe(0);
        const redeploys = [...world.codeDeploy.deployments.values()].filter((deployment) =>
          isRedeploy(deployment.description),
        );
        const byOriginal = new Map<string, number>();
        for (const deployment of redeploys) {
          const original = redeployOriginal(deployment.description) ?? "";
          byOriginal.set(original, (byOriginal.get(original) ?? 0) + 1);
        }
        const cap = Number(
          sandbox.runtime.functions.get("agentfix-sandbox-deployment-failure")?.spec.env?.MAX_REDEPLOYS,
        );
        for (const count of byOriginal.values()) expect(count).toBeLessThanOrEqual(cap);
        expect(world.errors).toEqual([]);
        // The faults did happen: every event came twice.
        expect((summary.events as { duplicated: number }).duplicated).toBeGreaterThan(0);

        // First, do no harm: whatever the faults, nothing the rules forbid, but for the launch path's
        // known gap restart on the baked AMI's instance (helpers.ts), which keeps the run's `ok` false.
        const onBakedAmi = (instanceId = "") =>
          world.instance(instanceId).groupName === CHAOS_NEIGHBOURS.bakedAgent.group;
        expect(
          summary.harm.items.filter((item) => !(isKnownGapRestart(item) && onBakedAmi(item.instanceId))),
        ).toEqual([]);
        expect(summary.harm.harm === 0).toBe(summary.checks.find((check) => HARM_CHECK.test(check.name))?.ok);
        const neighbours = summary.neighbours as { group: string; wanted: number; verified: number }[];
        for (const group of neighbours) expect(group.verified, group.group).toBe(group.wanted);
        expect(summary.care).toMatchObject({
          instancesTouchedByTwoStages: 0,
          instancesGivenTwoAgentVersions: 0,
          installsAfterOwnHook: 0,
          otherTeamsInstallsFollowed: 0,
          leavingWarmPool: { needlessInstalls: 0 },
        });
        // The cases did happen: the pool was left, the other team installed, the second stage ran.
        // Each instance that left it was looked at: checked, or given the agent it lacked (an install
        // that entered the pool broken is let in, failing open, and mended on the way out).
        const leaving = summary.care.leavingWarmPool;
        expect(leaving.instances).toBeGreaterThan(0);
        expect(leaving.checks + leaving.installs).toBeGreaterThanOrEqual(leaving.instances);
        expect(summary.otherTeamCommands).toBeGreaterThan(0);
      } finally {
        await sandbox.close();
      }
    },
  );
});
