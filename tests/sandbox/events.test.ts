import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { EventBridgeEvent } from "../../sandbox/events/shapes.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { deploymentFailureEventPattern, launchEventPattern } from "../../stacks/patterns.js";
import { REVISION, testSandbox } from "./helpers.js";

const sample = (name: string) =>
  JSON.parse(readFileSync(resolve(import.meta.dirname, "../events", name), "utf8")) as EventBridgeEvent;
const shape = (event: EventBridgeEvent) => ({
  top: Object.keys(event).sort(),
  detail: Object.keys(event.detail).sort(),
});

describe("the event bus", () => {
  let sandbox: Sandbox;
  afterEach(() => sandbox.close());

  async function fleet(options: Parameters<typeof testSandbox>[0] = {}) {
    sandbox = await testSandbox(options);
    const { world } = sandbox;
    world.autoScaling.createGroup({
      name: "web",
      image: { imageId: "ami-1", bakedAgent: { version: "1.6.0", running: true } },
    });
    world.autoScaling.createGroup({ name: "other", image: { imageId: "ami-1" } });
    for (const group of ["web", "other"]) {
      world.autoScaling.putLifecycleHook({
        groupName: group,
        hookName: "agentfix",
        transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        heartbeatTimeout: 3600,
        notificationMetadata: "agentfix launch",
      });
    }
    world.codeDeploy.createApplication("shop");
    world.codeDeploy.createDeploymentGroup({
      applicationName: "shop",
      name: "web-dg",
      autoScalingGroups: ["web"],
      lastSuccessfulRevision: REVISION,
    });
    const launches: EventBridgeEvent[] = [];
    const failures: EventBridgeEvent[] = [];
    sandbox.bus.addRule("launch", launchEventPattern(["web"], "agentfix"), (event) => {
      launches.push(event);
    });
    sandbox.bus.addRule("failure", deploymentFailureEventPattern(["shop/web-dg"]), (event) => {
      failures.push(event);
    });
    return { world, launches, failures };
  }

  it("publishes AWS-shaped events and routes them through the stacks' patterns", async () => {
    const { world, launches, failures } = await fleet({ seed: "bus" });
    world.autoScaling.setDesiredCapacity("web", 2);
    world.autoScaling.setDesiredCapacity("other", 1);
    await sandbox.waitFor(() => failures.length >= 2, { timeoutSeconds: 900, pollSeconds: 5 });
    // Only our hook on the group in scope; CodeDeploy's own hook and the other group are filtered out.
    expect(launches).toHaveLength(2);
    expect(new Set(launches.map((event) => event.detail.AutoScalingGroupName))).toEqual(new Set(["web"]));
    expect(shape(launches[0]!)).toEqual(
      shape(sample("ec2-instance-launch-lifecycle-action.current-with-origin-destination.json")),
    );
    expect(launches[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const token = launches[0]!.detail.LifecycleActionToken;
    expect(
      world.autoScaling.actions.some((action) => action.token === token && action.hookName === "agentfix"),
    ).toBe(true);
    expect(failures.every((event) => event.detail.state === "FAILURE")).toBe(true);
    expect(shape(failures[0]!)).toEqual(
      shape(sample("codedeploy-deployment-state-change.FAILURE.derived.json")),
    );
    const published = world.trace.entries
      .filter((entry) => entry.kind === "event.published")
      .map((entry) => (entry.data as { event: EventBridgeEvent }).event.detail.state);
    expect(published).toContain("START");
  });

  it("drops and duplicates deliveries as the seed decides, the same way every time", async () => {
    const run = async (seed: string) => {
      const { world, launches } = await fleet({
        seed,
        events: { dropProbability: 0.3, duplicateProbability: 0.5 },
      });
      world.autoScaling.setDesiredCapacity("web", 10);
      await sandbox.waitFor(() => false, { timeoutSeconds: 120, pollSeconds: 10 });
      const stats = { ...sandbox.bus.ruleStats.launch! };
      const delivered = launches.map((event) => event.detail.EC2InstanceId).sort();
      await sandbox.close();
      return { stats, delivered };
    };
    const first = await run("faults");
    const again = await run("faults");
    expect(first.stats.dropped).toBeGreaterThan(0);
    expect(first.stats.duplicated).toBeGreaterThan(0);
    expect(first.delivered.length).toBe(10 - first.stats.dropped + first.stats.duplicated);
    expect(again).toEqual(first);
  });
});
