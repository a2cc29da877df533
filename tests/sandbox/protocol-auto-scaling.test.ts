import {
  CompleteLifecycleActionCommand,
  DeleteLifecycleHookCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  PutLifecycleHookCommand,
  RecordLifecycleActionHeartbeatCommand,
  SetDesiredCapacityCommand,
} from "@aws-sdk/client-auto-scaling";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { Traffic } from "../../sandbox/server/traffic.js";
import { expectAwsError, pass, sdkClients, testSandbox } from "./helpers.js";

describe("Auto Scaling over the Query protocol", () => {
  let sandbox: Sandbox;
  let autoScaling: ReturnType<typeof sdkClients>["autoScaling"];

  beforeAll(async () => {
    sandbox = await testSandbox({ seed: "asg" });
    autoScaling = sdkClients(sandbox.endpoint).autoScaling;
    sandbox.world.autoScaling.createGroup({
      name: "web",
      maxSize: 4,
      image: { imageId: "ami-1", registrationDelaySeconds: 10 },
    });
  });
  afterAll(() => sandbox.close());

  it("creates a hook, scales from 0 and holds new instances in Pending:Wait", async () => {
    await autoScaling.send(
      new PutLifecycleHookCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "install-agent",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: 600,
        DefaultResult: "ABANDON",
      }),
    );
    const hooks = await autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "web" }));
    expect(hooks.LifecycleHooks).toEqual([
      expect.objectContaining({
        LifecycleHookName: "install-agent",
        HeartbeatTimeout: 600,
        GlobalTimeout: 60_000,
        DefaultResult: "ABANDON",
      }),
    ]);
    await autoScaling.send(
      new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 3 }),
    );
    await pass(5);
    const groups = await autoScaling.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["web"] }),
    );
    const group = groups.AutoScalingGroups![0]!;
    expect(group).toMatchObject({ AutoScalingGroupName: "web", DesiredCapacity: 3, MaxSize: 4, MinSize: 0 });
    expect(group.Instances?.map((instance) => instance.LifecycleState)).toEqual([
      "Pending:Wait",
      "Pending:Wait",
      "Pending:Wait",
    ]);
    expect(group.CreatedTime).toBeInstanceOf(Date);
    const instances = await autoScaling.send(
      new DescribeAutoScalingInstancesCommand({
        InstanceIds: group.Instances!.map((instance) => instance.InstanceId!).concat("i-00000000000000000"),
      }),
    );
    expect(instances.AutoScalingInstances).toHaveLength(3);
    expect(instances.AutoScalingInstances![0]).toMatchObject({
      AutoScalingGroupName: "web",
      LifecycleState: "Pending:Wait",
      HealthStatus: "HEALTHY",
      ImageId: "ami-1",
    });
    const activities = await autoScaling.send(
      new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }),
    );
    expect(activities.Activities).toHaveLength(3);
    expect(activities.Activities![0]).toMatchObject({ StatusCode: "MidLifecycleAction" });
    expect(activities.Activities![0]!.Description).toMatch(/^Launching a new EC2 instance: i-[0-9a-f]{17}$/);
  });

  it("completes by token or instance id, and says so when the action is already over", async () => {
    const [first, second] = sandbox.world.autoScaling.actions.filter(
      (action) => action.hookName === "install-agent",
    );
    await autoScaling.send(
      new RecordLifecycleActionHeartbeatCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "install-agent",
        LifecycleActionToken: first!.token,
      }),
    );
    expect(first!.heartbeats).toBe(1);
    await autoScaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "install-agent",
        LifecycleActionToken: first!.token,
        LifecycleActionResult: "CONTINUE",
      }),
    );
    await autoScaling.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: "web",
        LifecycleHookName: "install-agent",
        InstanceId: second!.instanceId,
        LifecycleActionResult: "CONTINUE",
      }),
    );
    await expectAwsError(
      autoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: "web",
          LifecycleHookName: "install-agent",
          LifecycleActionToken: first!.token,
          LifecycleActionResult: "CONTINUE",
        }),
      ),
      "ValidationError",
      400,
      `No active Lifecycle Action found with token ${first!.token}`,
    );
    await expectAwsError(
      autoScaling.send(
        new RecordLifecycleActionHeartbeatCommand({
          AutoScalingGroupName: "web",
          LifecycleHookName: "install-agent",
          InstanceId: second!.instanceId,
        }),
      ),
      "ValidationError",
      400,
      `No active Lifecycle Action found with instance ID ${second!.instanceId}`,
    );
    await pass(5);
    expect(sandbox.world.instance(first!.instanceId).lifecycleState).toBe("InService");
  });

  it("validates input as AWS does", async () => {
    const many = Array.from({ length: 51 }, (_, index) => `i-${String(index).padStart(17, "0")}`);
    await expectAwsError(
      autoScaling.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: many })),
      "ValidationError",
      400,
    );
    await expectAwsError(
      autoScaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: "web", DesiredCapacity: 9 })),
      "ValidationError",
      400,
      "New SetDesiredCapacity value 9 is above max value 4 for the AutoScaling group.",
    );
    await expectAwsError(
      autoScaling.send(
        new PutLifecycleHookCommand({
          AutoScalingGroupName: "web",
          LifecycleHookName: "x",
          LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
          HeartbeatTimeout: 10,
        }),
      ),
      "ValidationError",
      400,
    );
    await expectAwsError(
      autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "nope" })),
      "ValidationError",
      400,
    );
  });

  it("throttles with the Throttling code", async () => {
    sandbox.server.traffic = new Traffic({ rateLimits: { "AutoScaling.*": { rate: 0.001, burst: 1 } } });
    await autoScaling.send(new DescribeAutoScalingGroupsCommand({}));
    await expectAwsError(
      autoScaling.send(new DescribeAutoScalingGroupsCommand({})),
      "Throttling",
      400,
      "Rate exceeded",
    );
    expect(sandbox.counters.throttled["AutoScaling.DescribeAutoScalingGroups"]).toBe(1);
    sandbox.server.traffic = new Traffic();
  });
});

describe("DeleteLifecycleHook over the Query protocol", () => {
  let sandbox: Sandbox;
  afterAll(() => sandbox.close());

  it("completes the launches the hook still holds with ABANDON, then the hook is gone", async () => {
    sandbox = await testSandbox({ seed: "delete-hook" });
    const { autoScaling } = sdkClients(sandbox.endpoint);
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", maxSize: 4, image: { imageId: "ami-1" } });
    await autoScaling.send(
      new PutLifecycleHookCommand({
        AutoScalingGroupName: "api",
        LifecycleHookName: "ours",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: 600,
        DefaultResult: "CONTINUE",
      }),
    );
    await autoScaling.send(
      new SetDesiredCapacityCommand({ AutoScalingGroupName: "api", DesiredCapacity: 2 }),
    );
    await sandbox.waitFor(() => world.autoScaling.actions.length === 2, {
      timeoutSeconds: 60,
      pollSeconds: 1,
    });
    const waiting = world.autoScaling.actions.map((action) => action.instanceId);
    await autoScaling.send(
      new DeleteLifecycleHookCommand({ AutoScalingGroupName: "api", LifecycleHookName: "ours" }),
    );
    // "ABANDON for launching instances", even with DefaultResult CONTINUE.
    for (const instanceId of waiting) {
      expect(world.instance(instanceId).abandonReason).toBe("ABANDON by ours (hook deleted)");
    }
    expect(world.autoScaling.actions.map((action) => action.completed?.by)).toEqual([
      "hook-deleted",
      "hook-deleted",
    ]);
    const hooks = await autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: "api" }));
    expect(hooks.LifecycleHooks).toEqual([]);
    await expectAwsError(
      autoScaling.send(
        new DeleteLifecycleHookCommand({ AutoScalingGroupName: "api", LifecycleHookName: "ours" }),
      ),
      "ValidationError",
      400,
      "No Lifecycle Hook found with name ours for group api",
    );
    // The replacements launch with no hook to wait on.
    const live = () => world.autoScaling.liveInstances(world.autoScaling.group("api"));
    await sandbox.waitFor(
      () => live().length === 2 && live().every((instance) => instance.lifecycleState === "InService"),
      { timeoutSeconds: 600, pollSeconds: 5 },
    );
    expect(live().map((instance) => instance.id)).not.toContain(waiting[0]);
    expect(live().every((instance) => instance.lifecycleState === "InService")).toBe(true);
  });
});
