import {
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeScalingActivitiesCommand,
  DescribeWarmPoolCommand,
  PutWarmPoolCommand,
} from "@aws-sdk/client-auto-scaling";
import { DescribeInstanceInformationCommand, SendCommandCommand } from "@aws-sdk/client-ssm";
import { afterEach, describe, expect, it } from "vitest";
import type { EventBridgeEvent } from "../../sandbox/events/shapes.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { expectAwsError, sdkClients, testSandbox } from "./helpers.js";

const HOOK = "ours";

describe("a group with a warm pool", () => {
  let sandbox: Sandbox;
  afterEach(() => sandbox.close());

  async function poolOfTwo() {
    sandbox = await testSandbox({ seed: "warm-pool" });
    const { world } = sandbox;
    const events: EventBridgeEvent[] = [];
    world.onEvent((event) => events.push(event));
    world.autoScaling.createGroup({
      name: "web",
      maxSize: 4,
      image: { imageId: "ami-1", registrationDelaySeconds: 5 },
    });
    world.autoScaling.putLifecycleHook({
      groupName: "web",
      hookName: HOOK,
      transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
      heartbeatTimeout: 600,
    });
    const clients = sdkClients(sandbox.endpoint);
    await clients.autoScaling.send(
      new PutWarmPoolCommand({ AutoScalingGroupName: "web", MinSize: 2, MaxGroupPreparedCapacity: 2 }),
    );
    await sandbox.waitFor(() => world.autoScaling.actions.length === 2, {
      timeoutSeconds: 60,
      pollSeconds: 1,
    });
    return { world, events, clients };
  }

  it("launches into the pool through the launch hook, then stops what it prepared", async () => {
    const { world, events, clients } = await poolOfTwo();
    const [first, second] = world.autoScaling.actions;
    expect(world.instance(first!.instanceId).lifecycleState).toBe("Warmed:Pending:Wait");
    expect(events.map((event) => event.detail)).toEqual([
      expect.objectContaining({ EC2InstanceId: first!.instanceId, Origin: "EC2", Destination: "WarmPool" }),
      expect.objectContaining({ EC2InstanceId: second!.instanceId, Origin: "EC2", Destination: "WarmPool" }),
    ]);
    const activities = await clients.autoScaling.send(
      new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }),
    );
    expect(activities.Activities?.map((activity) => activity.Description).sort()).toEqual(
      [first!, second!]
        .map((action) => `Launching a new EC2 instance into warm pool: ${action.instanceId}`)
        .sort(),
    );
    // Running while the hook holds it: SSM reaches it.
    await sandbox.waitFor(() => world.ssm.managedInstances().length === 2, {
      timeoutSeconds: 60,
      pollSeconds: 1,
    });

    for (const action of [first!, second!])
      world.autoScaling.completeLifecycleAction(
        { groupName: "web", hookName: HOOK, token: action.token, result: "CONTINUE" },
        "api",
      );
    await sandbox.waitFor(
      () =>
        [first!, second!].every(
          (action) => world.instance(action.instanceId).lifecycleState === "Warmed:Stopped",
        ),
      { timeoutSeconds: 30, pollSeconds: 1 },
    );
    const pool = await clients.autoScaling.send(new DescribeWarmPoolCommand({ AutoScalingGroupName: "web" }));
    expect(pool.WarmPoolConfiguration).toEqual({
      MaxGroupPreparedCapacity: 2,
      MinSize: 2,
      PoolState: "Stopped",
    });
    expect(pool.Instances?.map((instance) => instance.LifecycleState)).toEqual([
      "Warmed:Stopped",
      "Warmed:Stopped",
    ]);
    const group = (
      await clients.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["web"] }))
    ).AutoScalingGroups?.[0];
    expect(group).toMatchObject({ Instances: [], WarmPoolSize: 2, WarmPoolConfiguration: { MinSize: 2 } });
    const described = await clients.autoScaling.send(
      new DescribeAutoScalingInstancesCommand({ InstanceIds: [first!.instanceId] }),
    );
    expect(described.AutoScalingInstances?.[0]?.LifecycleState).toBe("Warmed:Stopped");

    // Stopped: DescribeInstanceInformation leaves it out and Run Command cannot reach it.
    const information = await clients.ssm.send(new DescribeInstanceInformationCommand({}));
    expect(information.InstanceInformationList).toEqual([]);
    await expectAwsError(
      clients.ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-RunShellScript",
          InstanceIds: [first!.instanceId],
          Parameters: { commands: ["true"] },
        }),
      ),
      "InvalidInstanceId",
      400,
    );
  });

  it("draws a prepared instance into the group on scale-out, through the hook again with a new token", async () => {
    const { world, events, clients } = await poolOfTwo();
    const [first, second] = world.autoScaling.actions;
    for (const action of [first!, second!])
      world.autoScaling.completeLifecycleAction(
        { groupName: "web", hookName: HOOK, token: action.token, result: "CONTINUE" },
        "api",
      );
    await sandbox.waitFor(
      () =>
        world.autoScaling
          .warmPoolInstances(world.autoScaling.group("web"))
          .every((instance) => instance.lifecycleState === "Warmed:Stopped"),
      { timeoutSeconds: 30, pollSeconds: 1 },
    );

    world.autoScaling.setDesiredCapacity("web", 1);
    await sandbox.waitFor(
      () => world.autoScaling.actions.some((action) => action.origin === "WarmPool" && !action.completed),
      { timeoutSeconds: 60, pollSeconds: 1 },
    );
    const leaving = world.autoScaling.actions.find((action) => action.origin === "WarmPool")!;
    expect(leaving.instanceId).toBe(first!.instanceId);
    expect(leaving.token).not.toBe(first!.token);
    expect(leaving.destination).toBe("AutoScalingGroup");
    expect(world.instance(leaving.instanceId).lifecycleState).toBe("Pending:Wait");
    expect(events.find((event) => event.detail.LifecycleActionToken === leaving.token)?.detail).toMatchObject(
      {
        Origin: "WarmPool",
        Destination: "AutoScalingGroup",
      },
    );
    const activities = await clients.autoScaling.send(
      new DescribeScalingActivitiesCommand({ AutoScalingGroupName: "web" }),
    );
    expect(activities.Activities?.[0]?.Description).toMatch(
      /^Launching a new EC2 instance (from|into) warm pool: i-/,
    );
    expect(activities.Activities?.map((activity) => activity.Description)).toContain(
      `Launching a new EC2 instance from warm pool: ${leaving.instanceId}`,
    );
    // Started again: SSM reaches it while the hook holds it in the group.
    expect(world.ssm.isManaged(world.instance(leaving.instanceId))).toBe(true);

    world.autoScaling.completeLifecycleAction(
      { groupName: "web", hookName: HOOK, instanceId: leaving.instanceId, result: "CONTINUE" },
      "api",
    );
    await sandbox.waitFor(() => world.instance(leaving.instanceId).lifecycleState === "InService", {
      timeoutSeconds: 30,
      pollSeconds: 1,
    });
    // The pool is filled back to its minimum size with a new launch into it.
    const pool = world.autoScaling.warmPoolInstances(world.autoScaling.group("web"));
    expect(pool.map((instance) => instance.id)).toContain(second!.instanceId);
    expect(pool).toHaveLength(2);
  });

  it("refuses a pool state AWS does not know", async () => {
    sandbox = await testSandbox({ seed: "warm-pool-state" });
    sandbox.world.autoScaling.createGroup({ name: "web", image: { imageId: "ami-1" } });
    await expectAwsError(
      sdkClients(sandbox.endpoint).autoScaling.send(
        new PutWarmPoolCommand({ AutoScalingGroupName: "web", PoolState: "Frozen" as "Stopped" }),
      ),
      "ValidationError",
      400,
      /poolState/,
    );
  });
});
