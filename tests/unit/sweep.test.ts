import {
  type Activity,
  AutoScalingClient,
  type AutoScalingGroup,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  DescribeWarmPoolCommand,
} from "@aws-sdk/client-auto-scaling";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { loadSweepConfig } from "../../functions/core/config.js";
import { clearHookCache } from "../../functions/core/launch/lifecycle.js";
import { replayPayload } from "../../functions/core/launch/queue.js";
import { EnqueueError, sweepStaleLaunches } from "../../functions/core/launch/sweep.js";
import { LaunchReplaySchema } from "../../functions/schemas/launch-event.js";

const autoScaling = mockClient(AutoScalingClient);
const sqs = mockClient(SQSClient);
const dynamodb = mockClient(DynamoDBClient);

const HOOK = "agentfix-launch";
const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/launch";
const SETTINGS = loadSweepConfig({
  TARGET_GROUPS: "web",
  LIFECYCLE_HOOK_NAME: HOOK,
  LAUNCH_QUEUE_URL: QUEUE_URL,
  STALE_AFTER_SECONDS: "300",
});

function group(name: string, instances: [string, string][], extra: Partial<AutoScalingGroup> = {}) {
  return {
    AutoScalingGroupName: name,
    Instances: instances.map(([InstanceId, LifecycleState]) => ({ InstanceId, LifecycleState })),
    ...extra,
  } as AutoScalingGroup;
}

function launched(
  instanceId: string,
  secondsAgo: number,
  warmPool: false | "into" | "from" = false,
): Activity {
  return {
    ActivityId: `act-${instanceId}`,
    AutoScalingGroupName: "web",
    Cause: "test",
    Description: `Launching a new EC2 instance${warmPool ? ` ${warmPool} warm pool` : ""}: ${instanceId}`,
    StartTime: new Date(startOf(secondsAgo)),
    StatusCode: "MidLifecycleAction",
  };
}

const NOW = Date.now();
const startOf = (secondsAgo: number) => Math.floor((NOW - secondsAgo * 1000) / 1000) * 1000;

function ourHook(groupName = "web") {
  return {
    LifecycleHooks: [
      {
        LifecycleHookName: HOOK,
        AutoScalingGroupName: groupName,
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
      },
    ],
  };
}

function sentBodies() {
  return sqs
    .commandCalls(SendMessageBatchCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => JSON.parse(entry.MessageBody ?? "{}"));
}

beforeEach(() => {
  clearHookCache();
  autoScaling.reset();
  sqs.reset();
  sqs.on(SendMessageBatchCommand).callsFake((input) => ({
    Successful: input.Entries.map((entry: { Id: string }) => ({
      Id: entry.Id,
      MessageId: `m-${entry.Id}`,
      MD5OfMessageBody: "x",
    })),
    Failed: [],
  }));
  autoScaling.on(DescribeLifecycleHooksCommand).resolves(ourHook());
});

describe("sweepStaleLaunches", () => {
  it("enqueues a replay payload for an instance waiting on our hook longer than the stale threshold", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0aaa", "Pending:Wait"]])] });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0aaa", 600)] });

    const report = await sweepStaleLaunches(SETTINGS);

    expect(report.groups).toEqual(["web"]);
    expect(report.examined).toBe(1);
    expect(report.stale).toHaveLength(1);
    expect(report.stale[0]).toMatchObject({ instanceId: "i-0aaa", group: "web" });
    expect(report.stale[0]?.waitingSeconds).toBeGreaterThanOrEqual(599);
    expect(report.enqueued).toBe(1);
    expect(report.dryRun).toBe(false);
    const call = sqs.commandCalls(SendMessageBatchCommand)[0];
    expect(call?.args[0].input.QueueUrl).toBe(QUEUE_URL);
    expect(sentBodies()).toEqual([
      {
        instanceIds: ["i-0aaa"],
        autoScalingGroupName: "web",
        lifecycleHookName: HOOK,
        lifecycleActionStartedAt: new Date(startOf(600)).toISOString(),
        source: "sweep",
      },
    ]);
  });

  it("leaves alone the launches whose records say they are in hand, or done with our action completed", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group("web", [
          ["i-0busy", "Pending:Wait"],
          ["i-0done", "Pending:Wait"],
          ["i-0quiet", "Pending:Wait"],
          ["i-0lost", "Pending:Wait"],
        ]),
      ],
    });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({
      Activities: ["i-0busy", "i-0done", "i-0quiet", "i-0lost"].map((id) => launched(id, 120)),
    });
    const record = (instanceId: string, fields: object) => ({
      Item: {
        pk: { S: `launch#${instanceId}` },
        record: { S: JSON.stringify({ instanceId, startedAt: startOf(120), ...fields }) },
      },
    });
    dynamodb.reset();
    dynamodb.on(GetItemCommand).resolves({});
    // Worked on a moment ago: its launch message is in the queue.
    dynamodb
      .on(GetItemCommand, { Key: { pk: { S: "launch#i-0busy" } } })
      .resolves(record("i-0busy", { phase: "installing", updatedAt: NOW - 20_000 }));
    // Our CONTINUE is given: CodeDeploy's own hook holds it now.
    dynamodb
      .on(GetItemCommand, { Key: { pk: { S: "launch#i-0done" } } })
      .resolves(record("i-0done", { phase: "done", outcome: "CONTINUE", updatedAt: NOW - 60_000 }));
    // Nothing heard of it for minutes: its message was lost.
    dynamodb
      .on(GetItemCommand, { Key: { pk: { S: "launch#i-0quiet" } } })
      .resolves(record("i-0quiet", { phase: "registering", updatedAt: NOW - 400_000 }));

    const report = await sweepStaleLaunches({ ...SETTINGS, STALE_AFTER_SECONDS: 60, LEASE_TABLE: "leases" });

    expect(report.inHand).toEqual(["i-0busy", "i-0done"]);
    expect(report.stale.map((instance) => instance.instanceId)).toEqual(["i-0quiet", "i-0lost"]);
    expect(sentBodies().map((body) => body.instanceIds[0])).toEqual(["i-0quiet", "i-0lost"]);
  });

  it("leaves a slow install in hand until its heartbeat is due, and replays one whose message is lost before the window lapses", async () => {
    const ids = ["i-0slow", "i-0lost", "i-0fresh"];
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group(
          "web",
          ids.map((id): [string, string] => [id, "Pending:Wait"]),
        ),
      ],
    });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({
      Activities: ids.map((id) => launched(id, 1800)),
    });
    const installing = (instanceId: string, fields: object) => ({
      Item: {
        pk: { S: `launch#${instanceId}` },
        record: {
          S: JSON.stringify({
            instanceId,
            phase: "installing",
            commandId: "c-1",
            startedAt: startOf(1800),
            heartbeatTimeoutSeconds: 900,
            ...fields,
          }),
        },
      },
    });
    dynamodb.reset();
    // Looked up 10 minutes ago (its next look is up to 15 minutes later), beaten 7 minutes ago: its
    // message is back by the heartbeat, due in 30 s.
    dynamodb
      .on(GetItemCommand, { Key: { pk: { S: "launch#i-0slow" } } })
      .resolves(installing("i-0slow", { lastBeatAt: NOW - 420_000, updatedAt: NOW - 420_000 }));
    // Its heartbeat was due 3 minutes ago and never came: its message is lost. Replayed now, with
    // 4 minutes of its 15-minute window left.
    dynamodb
      .on(GetItemCommand, { Key: { pk: { S: "launch#i-0lost" } } })
      .resolves(installing("i-0lost", { lastBeatAt: NOW - 630_000, updatedAt: NOW - 630_000 }));
    // Beaten a moment ago.
    dynamodb
      .on(GetItemCommand, { Key: { pk: { S: "launch#i-0fresh" } } })
      .resolves(installing("i-0fresh", { lastBeatAt: NOW - 10_000, updatedAt: NOW - 10_000 }));

    const report = await sweepStaleLaunches({ ...SETTINGS, STALE_AFTER_SECONDS: 30, LEASE_TABLE: "leases" });

    expect(report.inHand).toEqual(["i-0slow", "i-0fresh"]);
    expect(sentBodies().map((body) => body.instanceIds[0])).toEqual(["i-0lost"]);
  });

  it("carries the launch's start and a warm-pool exit in the replay payload", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0bbb", "Pending:Wait"]])] });
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: [launched("i-0bbb", 900, "from"), launched("i-0bbb", 86_400, "into")] });

    await sweepStaleLaunches(SETTINGS);

    expect(sentBodies()).toEqual([
      expect.objectContaining({
        instanceIds: ["i-0bbb"],
        lifecycleActionStartedAt: new Date(startOf(900)).toISOString(),
        origin: "WarmPool",
      }),
    ]);
  });

  it("leaves an instance that has waited less than the stale threshold to the event-driven path", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0new", "Pending:Wait"]])] });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0new", 60)] });

    const report = await sweepStaleLaunches(SETTINGS);

    expect(report.examined).toBe(1);
    expect(report.stale).toEqual([]);
    expect(report.enqueued).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("looks again at a young launch without a record the moment it turns stale, and not at one whose event arrived", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group("web", [
          ["i-0aaa1111", "Pending:Wait"],
          ["i-0bbb2222", "Pending:Wait"],
          ["i-0ccc3333", "Pending:Wait"],
        ]),
      ],
    });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({
      Activities: [launched("i-0aaa1111", 5), launched("i-0bbb2222", 8), launched("i-0ccc3333", 12)],
    });
    dynamodb.reset();
    dynamodb.on(GetItemCommand).resolves({});
    dynamodb.on(GetItemCommand, { Key: { pk: { S: "launch#i-0aaa1111" } } }).resolves({
      Item: {
        pk: { S: "launch#i-0aaa1111" },
        record: {
          S: JSON.stringify({ instanceId: "i-0aaa1111", phase: "registering", startedAt: startOf(5) }),
        },
      },
    });
    // A record of the instance's launch of yesterday (a warm-pool instance launches twice).
    dynamodb.on(GetItemCommand, { Key: { pk: { S: "launch#i-0ccc3333" } } }).resolves({
      Item: {
        pk: { S: "launch#i-0ccc3333" },
        record: {
          S: JSON.stringify({ instanceId: "i-0ccc3333", phase: "done", startedAt: startOf(86_400) }),
        },
      },
    });

    const report = await sweepStaleLaunches({ ...SETTINGS, STALE_AFTER_SECONDS: 20, LEASE_TABLE: "leases" });

    expect(report.stale).toEqual([]);
    expect(report.lookAhead).toEqual(["i-0bbb2222", "i-0ccc3333"]);
    const entries = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) => call.args[0].input.Entries ?? []);
    expect(
      entries.map((entry) => [JSON.parse(entry.MessageBody ?? "{}").instanceIds[0], entry.DelaySeconds]),
    ).toEqual([
      ["i-0bbb2222", 12],
      ["i-0ccc3333", 8],
    ]);
    for (const body of sentBodies()) {
      expect(body).toMatchObject({ source: "sweep", ifEventLost: true });
      expect(LaunchReplaySchema.parse(body)).toEqual(body);
    }

    // In a dry run nothing is sent, but the report names them.
    sqs.resetHistory();
    const dry = await sweepStaleLaunches({
      ...SETTINGS,
      STALE_AFTER_SECONDS: 20,
      LEASE_TABLE: "leases",
      DRY_RUN: true,
    });
    expect(dry.lookAhead).toEqual(["i-0bbb2222", "i-0ccc3333"]);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("skips a group whose waiting instances are held by another hook, not ours", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0aaa", "Pending:Wait"]])] });
    autoScaling.on(DescribeLifecycleHooksCommand).resolves({
      LifecycleHooks: [
        {
          LifecycleHookName: "CodeDeploy-managed-automatic-launch-deployment-hook-web",
          LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        },
      ],
    });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0aaa", 3600)] });

    const report = await sweepStaleLaunches(SETTINGS);

    expect(report.groups).toEqual([]);
    expect(report.examined).toBe(0);
    expect(report.stale).toEqual([]);
    expect(autoScaling.commandCalls(DescribeLifecycleHooksCommand)[0]?.args[0].input).toEqual({
      AutoScalingGroupName: "web",
    });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("ignores instances that are not held in a launch wait", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group("web", [
          ["i-0svc", "InService"],
          ["i-0pro", "Pending:Proceed"],
          ["i-0ter", "Terminating:Wait"],
        ]),
      ],
    });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0svc", 3600)] });

    const report = await sweepStaleLaunches(SETTINGS);

    expect(report.examined).toBe(0);
    expect(autoScaling.commandCalls(DescribeLifecycleHooksCommand)).toHaveLength(0);
    expect(autoScaling.commandCalls(DescribeScalingActivitiesCommand)).toHaveLength(0);
  });

  it("finds warm-pool instances in Warmed:Pending:Wait through DescribeWarmPool", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [group("web", [], { WarmPoolConfiguration: { PoolState: "Stopped" } })],
    });
    autoScaling.on(DescribeWarmPoolCommand).resolves({
      Instances: [
        {
          InstanceId: "i-0warm",
          LifecycleState: "Warmed:Pending:Wait",
          AvailabilityZone: "us-east-1a",
          HealthStatus: "Healthy",
          ProtectedFromScaleIn: false,
        },
      ],
    });
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: [launched("i-0warm", 900, "into")] });

    const report = await sweepStaleLaunches(SETTINGS);

    expect(report.stale.map((instance) => instance.instanceId)).toEqual(["i-0warm"]);
    expect(report.stale[0]?.waitingSeconds).toBeGreaterThanOrEqual(899);
    expect(autoScaling.commandCalls(DescribeWarmPoolCommand)[0]?.args[0].input.AutoScalingGroupName).toBe(
      "web",
    );
  });

  it("does not call DescribeWarmPool for a group without a warm pool", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0aaa", "Pending:Wait"]])] });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0aaa", 600)] });

    await sweepStaleLaunches(SETTINGS);

    expect(autoScaling.commandCalls(DescribeWarmPoolCommand)).toHaveLength(0);
  });

  it("pages through scaling activities until it finds the launch of every waiting instance", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group("web", [
          ["i-0aaa", "Pending:Wait"],
          ["i-0bbb", "Pending:Wait"],
        ]),
      ],
    });
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolvesOnce({ Activities: [launched("i-0aaa", 400)], NextToken: "page-2" })
      .resolvesOnce({ Activities: [launched("i-0zzz", 500)], NextToken: "page-3" })
      .resolvesOnce({ Activities: [launched("i-0bbb", 700)], NextToken: "page-4" });

    const report = await sweepStaleLaunches(SETTINGS);

    const calls = autoScaling.commandCalls(DescribeScalingActivitiesCommand);
    expect(calls.map((call) => call.args[0].input.NextToken)).toEqual([undefined, "page-2", "page-3"]);
    expect(calls[0]?.args[0].input).toMatchObject({ AutoScalingGroupName: "web", MaxRecords: 100 });
    expect(report.stale.map((instance) => instance.instanceId).sort()).toEqual(["i-0aaa", "i-0bbb"]);
  });

  it("treats a waiting instance whose launch activity is no longer listed as stale", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0old", "Pending:Wait"]])] });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });

    const report = await sweepStaleLaunches(SETTINGS);

    expect(report.stale).toEqual([
      { instanceId: "i-0old", group: "web", waitingSeconds: null, hook: expect.any(String) },
    ]);
    expect(report.enqueued).toBe(1);
  });

  it("describes only the groups in scope, every group only for an explicit *, and none for an empty list", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });

    await sweepStaleLaunches({ ...SETTINGS, TARGET_GROUPS: ["web", "api"] });
    await sweepStaleLaunches({ ...SETTINGS, TARGET_GROUPS: ["*"] });
    const none = await sweepStaleLaunches({ ...SETTINGS, TARGET_GROUPS: [] });

    const inputs = autoScaling
      .commandCalls(DescribeAutoScalingGroupsCommand)
      .map((call) => call.args[0].input);
    expect(inputs).toHaveLength(2);
    expect(inputs[0]?.AutoScalingGroupNames).toEqual(["web", "api"]);
    expect(inputs[1]?.AutoScalingGroupNames).toBeUndefined();
    // An empty list is nothing in scope: no call, nothing swept.
    expect(none).toMatchObject({ groups: [], examined: 0, stale: [], enqueued: 0 });
  });

  it("pages through the groups of the account", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolvesOnce({ AutoScalingGroups: [group("web", [])], NextToken: "more" })
      .resolvesOnce({ AutoScalingGroups: [group("api", [["i-0api", "Pending:Wait"]])] });
    autoScaling.on(DescribeLifecycleHooksCommand).resolves(ourHook("api"));
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0api", 1000)] });

    const report = await sweepStaleLaunches({ ...SETTINGS, TARGET_GROUPS: ["*"] });

    expect(autoScaling.commandCalls(DescribeAutoScalingGroupsCommand)).toHaveLength(2);
    expect(report.groups).toEqual(["api"]);
    expect(sentBodies()[0]).toMatchObject({ instanceIds: ["i-0api"], autoScalingGroupName: "api" });
  });

  it("sends at most ten messages per SendMessageBatch call", async () => {
    const ids = Array.from({ length: 23 }, (_, index) => `i-0${index.toString(16).padStart(4, "0")}`);
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group(
          "web",
          ids.map((id) => [id, "Pending:Wait"] as [string, string]),
        ),
      ],
    });
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: ids.map((id) => launched(id, 1200)) });

    const report = await sweepStaleLaunches(SETTINGS);

    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls.map((call) => call.args[0].input.Entries?.length)).toEqual([10, 10, 3]);
    expect(report.enqueued).toBe(23);
    expect(
      sentBodies()
        .map((body) => body.instanceIds[0])
        .sort(),
    ).toEqual([...ids].sort());
  });

  it("raises an EnqueueError naming every entry SQS did not accept", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group("web", [
          ["i-0aaa", "Pending:Wait"],
          ["i-0bbb", "Pending:Wait"],
        ]),
      ],
    });
    autoScaling
      .on(DescribeScalingActivitiesCommand)
      .resolves({ Activities: [launched("i-0aaa", 600), launched("i-0bbb", 600)] });
    sqs.on(SendMessageBatchCommand).callsFake((input) => ({
      Successful: [{ Id: input.Entries[0].Id, MessageId: "m-1", MD5OfMessageBody: "x" }],
      Failed: [{ Id: input.Entries[1].Id, SenderFault: false, Code: "InternalError", Message: "try again" }],
    }));

    const failure = await sweepStaleLaunches(SETTINGS).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(EnqueueError);
    expect((failure as EnqueueError).failed).toEqual([
      { instanceId: "i-0bbb", code: "InternalError", message: "try again" },
    ]);
    expect((failure as EnqueueError).message).toContain("i-0bbb (InternalError: try again)");
  });

  it("reports stale instances without enqueuing them in dry-run mode", async () => {
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [group("web", [["i-0aaa", "Pending:Wait"]])] });
    autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [launched("i-0aaa", 600)] });

    const report = await sweepStaleLaunches({ ...SETTINGS, DRY_RUN: true });

    expect(report.dryRun).toBe(true);
    expect(report.stale).toHaveLength(1);
    expect(report.enqueued).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("writes replay payloads the launch function accepts", () => {
    const payload = replayPayload({ instanceId: "i-0123456789abcdef0", group: "web", hook: HOOK }, "sweep");
    expect(LaunchReplaySchema.parse(payload)).toEqual({
      instanceIds: ["i-0123456789abcdef0"],
      autoScalingGroupName: "web",
      lifecycleHookName: HOOK,
      source: "sweep",
    });
  });
});
