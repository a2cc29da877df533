import { afterEach, describe, expect, it } from "vitest";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { testSandbox } from "./helpers.js";

/**
 * A stack update that removes a group from `groups` deletes our hook on it, and AWS's
 * DeleteLifecycleHook completes the launches still waiting on it with ABANDON. The update drains the
 * hook first (functions/drain-hook.ts, as the stacks' Custom::LifecycleHookDrain does): those launches
 * are completed with CONTINUE and go into service.
 */
/**
 * Groups `web` and `api` whose instances never register with SSM, so they wait on our hook until the
 * registration timeout; a stage `dev` that names both, with ABANDON as its failure result.
 */
async function twoGroupsOnOurHook(sandbox: Sandbox) {
  const { world } = sandbox;
  for (const name of ["web", "api"]) {
    world.autoScaling.createGroup({
      name,
      maxSize: 4,
      image: { imageId: "ami-1", bakedAgent: null, neverRegistersProbability: 1 },
    });
  }
  const service = await sandbox.deployService(
    { groups: ["web", "api"], launch: { failureResult: "ABANDON" } },
    { stage: "dev", sweep: false },
  );
  return { world, service, hook: service.config.hook.name };
}

describe("a stage update that removes a group", () => {
  let sandbox: Sandbox | undefined;
  afterEach(async () => {
    await sandbox?.close();
    sandbox = undefined;
  });

  it("drains the group's hook before deleting it: its waiting launches continue, none is abandoned", async () => {
    sandbox = await testSandbox({ seed: "drain", clockScale: 0.01 });
    const { world, service, hook } = await twoGroupsOnOurHook(sandbox);
    world.autoScaling.setDesiredCapacity("api", 2);
    world.autoScaling.setDesiredCapacity("web", 1);
    const waitingOn = (group: string) =>
      world.autoScaling.actions.filter(
        (action) => action.groupName === group && action.hookName === hook && !action.completed,
      );
    await sandbox.waitFor(() => waitingOn("api").length === 2 && waitingOn("web").length === 1, {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    const held = waitingOn("api").map((action) => action.instanceId);

    const update = await sandbox.updateService(service, {
      groups: ["web"],
      launch: { failureResult: "ABANDON" },
    });

    expect(update.drained).toEqual([
      expect.objectContaining({ groupName: "api", hookName: hook, continued: held, failed: [] }),
    ]);
    expect([...world.autoScaling.group("api").hooks.keys()]).toEqual([]);
    expect([...world.autoScaling.group("web").hooks.keys()]).toEqual([hook]);
    expect(service.config.groups).toEqual(["web"]);
    for (const instanceId of held) {
      const [action] = world.autoScaling.actionsOf(instanceId);
      expect(action?.completed).toMatchObject({ result: "CONTINUE", by: "api" });
    }
    await sandbox.waitFor(() => held.every((id) => world.instance(id).lifecycleState === "InService"), {
      timeoutSeconds: 60,
      pollSeconds: 1,
    });
    expect(held.map((id) => world.instance(id).lifecycleState)).toEqual(["InService", "InService"]);
    expect(held.map((id) => world.instance(id).milestones.abandoned)).toEqual([undefined, undefined]);
    // The group still named keeps its hook and its waiting launch.
    expect(waitingOn("web")).toHaveLength(1);
  });

  it("drains the launches waiting on the hook into the group's warm pool too: none is abandoned", async () => {
    sandbox = await testSandbox({ seed: "drain-warm-pool", clockScale: 0.01 });
    const { world, service, hook } = await twoGroupsOnOurHook(sandbox);
    // Two instances launched into the warm pool (Warmed:Pending:Wait, listed only by DescribeWarmPool)
    // and one into the group (Pending:Wait), all held by our hook.
    world.autoScaling.putWarmPool("api", { minSize: 2, maxGroupPreparedCapacity: 2 });
    world.autoScaling.setDesiredCapacity("api", 1);
    const waiting = () =>
      world.autoScaling.actions.filter(
        (action) => action.groupName === "api" && action.hookName === hook && !action.completed,
      );
    await sandbox.waitFor(() => waiting().length === 3, { timeoutSeconds: 120, pollSeconds: 1 });
    const held = waiting().map((action) => action.instanceId);
    const states = held.map((id) => world.instance(id).lifecycleState).sort();
    expect(states).toEqual(["Pending:Wait", "Warmed:Pending:Wait", "Warmed:Pending:Wait"]);

    const update = await sandbox.updateService(service, {
      groups: ["web"],
      launch: { failureResult: "ABANDON" },
    });

    expect(update.drained).toHaveLength(1);
    expect(update.drained[0]).toMatchObject({ groupName: "api", hookName: hook, failed: [] });
    expect([...update.drained[0]!.continued].sort()).toEqual([...held].sort());
    for (const instanceId of held) {
      expect(world.autoScaling.actionsOf(instanceId)[0]?.completed).toMatchObject({
        result: "CONTINUE",
        by: "api",
      });
      expect(world.instance(instanceId).milestones.abandoned).toBeUndefined();
    }
    await sandbox.waitFor(
      () => held.every((id) => ["InService", "Warmed:Stopped"].includes(world.instance(id).lifecycleState)),
      { timeoutSeconds: 60, pollSeconds: 1 },
    );
    expect(held.map((id) => world.instance(id).lifecycleState).sort()).toEqual([
      "InService",
      "Warmed:Stopped",
      "Warmed:Stopped",
    ]);
  });
});
