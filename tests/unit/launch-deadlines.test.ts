import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import {
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { clock, setClockScale } from "../../functions/core/common/clock.js";
import { NO_LEASE } from "../../functions/core/common/lease.js";
import { defaultLaunchConfig } from "../../functions/core/config.js";
import { clearHookCache } from "../../functions/core/launch/lifecycle.js";
import { type LaunchRequest, reconcileLaunches } from "../../functions/core/launch/reconcile.js";

// Deadlines count from each instance's own launch, whatever brought it here (an event, the sweep, an
// operator), and the service only acts while its own lifecycle action is open.
const ssm = mockClient(SSMClient);
const autoScaling = mockClient(AutoScalingClient);
const GROUP = "web-asg";
const HOOK = "agentfix-launch";

function waiting(...instanceIds: string[]) {
  autoScaling.on(DescribeAutoScalingInstancesCommand).resolves({
    AutoScalingInstances: instanceIds.map((InstanceId) => ({
      InstanceId,
      AutoScalingGroupName: GROUP,
      LifecycleState: "Pending:Wait",
      AvailabilityZone: "us-east-1a",
      HealthStatus: "HEALTHY",
      ProtectedFromScaleIn: false,
    })),
  });
}

function launchedAgo(instanceId: string, seconds: number, warmPool?: "from") {
  return {
    ActivityId: `a-${instanceId}`,
    AutoScalingGroupName: GROUP,
    Cause: "scale-out",
    Description: `Launching a new EC2 instance${warmPool ? " from warm pool" : ""}: ${instanceId}`,
    StartTime: new Date(clock.now() - seconds * 1000),
    StatusCode: "MidLifecycleAction" as const,
  };
}

function run(requests: LaunchRequest[], remainingMs = 120_000) {
  return reconcileLaunches(
    requests,
    defaultLaunchConfig({
      POLL_INTERVAL_MS: 5_000,
      REGISTRATION_TIMEOUT_SECONDS: 600,
      LIFECYCLE_HOOK_NAME: HOOK,
    }),
    { deadline: clock.now() + remainingMs, correlationId: "req-1", lease: NO_LEASE },
  );
}

beforeAll(() => setClockScale(0.0005));
beforeEach(() => {
  ssm.reset();
  autoScaling.reset();
  autoScaling.on(DescribeLifecycleHooksCommand).resolves({
    LifecycleHooks: [
      {
        LifecycleHookName: HOOK,
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: 900,
        DefaultResult: "ABANDON",
      },
    ],
  });
  autoScaling.on(CompleteLifecycleActionCommand).resolves({});
  autoScaling.on(RecordLifecycleActionHeartbeatCommand).resolves({});
  // None of these instances ever registers with SSM.
  ssm.on(DescribeInstanceInformationCommand).resolves({ InstanceInformationList: [] });
});
afterEach(() => clearHookCache());

describe("launch deadlines", () => {
  it("gives a fresh launch batched with an old one its own registration time", async () => {
    waiting("i-00000000000000001", "i-00000000000000002");
    const event = (instanceId: string, secondsAgo: number): LaunchRequest => ({
      instanceId,
      group: GROUP,
      hook: HOOK,
      token: `token-${instanceId}`,
      startedAt: clock.now() - secondsAgo * 1000,
      source: "event",
    });

    const outcomes = await run([event("i-00000000000000001", 590), event("i-00000000000000002", 5)]);

    const byId = new Map(outcomes.map((outcome) => [outcome.instanceId, outcome]));
    expect(byId.get("i-00000000000000001")).toMatchObject({ outcome: "ABANDON" });
    expect(byId.get("i-00000000000000001")?.reason).toContain("never came Online with SSM");
    expect(byId.get("i-00000000000000002")).toMatchObject({ outcome: "PENDING" });
  });

  it("abandons a swept instance that never registered once its registration time from launch is over", async () => {
    waiting("i-00000000000000003");
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: [launchedAgo("i-00000000000000003", 700)] });

    const [outcome] = await run([
      { instanceId: "i-00000000000000003", group: GROUP, hook: HOOK, source: "sweep" },
    ]);

    expect(outcome).toMatchObject({ outcome: "ABANDON" });
    expect(outcome?.elapsedSeconds).toBeGreaterThanOrEqual(700);
    expect(autoScaling.commandCalls(CompleteLifecycleActionCommand)[0]?.args[0].input).toMatchObject({
      InstanceId: "i-00000000000000003",
      LifecycleActionResult: "ABANDON",
    });
  });
});

describe("our own lifecycle action", () => {
  it("leaves a replayed instance alone when our action is over and another hook holds it", async () => {
    waiting("i-00000000000000004");
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: [launchedAgo("i-00000000000000004", 120)] });
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).rejects(
      Object.assign(new Error("No active Lifecycle Action found with instance ID i-00000000000000004"), {
        name: "ValidationError",
      }),
    );

    const [outcome] = await run([{ instanceId: "i-00000000000000004", group: GROUP, source: "replay" }]);

    expect(outcome).toMatchObject({ outcome: "ALREADY_COMPLETED" });
    expect(outcome?.reason).toContain("our lifecycle action is not open");
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(ssm.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(0);
    expect(autoScaling.commandCalls(CompleteLifecycleActionCommand)).toHaveLength(0);
  });

  it("checks, not installs, a replayed instance that is leaving the warm pool", async () => {
    waiting("i-00000000000000005");
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: [launchedAgo("i-00000000000000005", 30, "from")] });
    ssm.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: [
        { InstanceId: "i-00000000000000005", PingStatus: "Online", PlatformType: "Linux" },
      ],
    });
    ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [] });

    await run([{ instanceId: "i-00000000000000005", group: GROUP, source: "replay" }], 20_000);

    const documents = ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input.DocumentName);
    expect(documents.length).toBeGreaterThan(0);
    expect(documents).not.toContain("AWS-ConfigureAWSPackage");
  });
});
