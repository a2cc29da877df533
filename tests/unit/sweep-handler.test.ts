import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
} from "@aws-sdk/client-auto-scaling";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";

const autoScaling = mockClient(AutoScalingClient);
const sqs = mockClient(SQSClient);

const CONTEXT = {
  functionName: "sweep",
  awsRequestId: "req-1",
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

const SCHEDULED_EVENT = {
  version: "0",
  id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event",
  source: "aws.events",
  account: "123456789012",
  time: "2026-11-26T06:00:00Z",
  region: "us-east-1",
  resources: ["arn:aws:events:us-east-1:123456789012:rule/agentfix-sweep"],
  detail: {},
};

let handler: (event: unknown, context: Context) => Promise<unknown>;

beforeAll(async () => {
  // The handler reads its configuration once, when its module loads.
  process.env.TARGET_GROUPS = "web";
  process.env.LIFECYCLE_HOOK_NAME = "agentfix-launch";
  process.env.LAUNCH_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/launch";
  process.env.STALE_AFTER_SECONDS = "300";
  process.env.DRY_RUN = "false";
  ({ handler } = await import("../../functions/sweep.js"));
});

beforeEach(() => {
  autoScaling.reset();
  sqs.reset();
  autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: "web",
        Instances: [{ InstanceId: "i-0aaa", LifecycleState: "Pending:Wait" }],
      } as never,
    ],
  });
  autoScaling.on(DescribeLifecycleHooksCommand).resolves({
    LifecycleHooks: [
      { LifecycleHookName: "agentfix-launch", LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING" },
    ],
  });
  autoScaling.on(DescribeScalingActivitiesCommand).resolves({
    Activities: [
      {
        ActivityId: "a-1",
        AutoScalingGroupName: "web",
        Cause: "scale out",
        Description: "Launching a new EC2 instance: i-0aaa",
        StartTime: new Date(Date.now() - 900_000),
        StatusCode: "MidLifecycleAction",
      },
    ],
  });
  sqs
    .on(SendMessageBatchCommand)
    .resolves({ Successful: [{ Id: "0-i-0aaa", MessageId: "m", MD5OfMessageBody: "x" }] });
});

describe("sweep handler", () => {
  it("sweeps the configured groups on a scheduled event and returns the report", async () => {
    const report = await handler(SCHEDULED_EVENT, CONTEXT);

    expect(report).toMatchObject({ groups: ["web"], examined: 1, enqueued: 1, dryRun: false });
    expect(
      autoScaling.commandCalls(DescribeAutoScalingGroupsCommand)[0]?.args[0].input.AutoScalingGroupNames,
    ).toEqual(["web"]);
    const entry = sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries?.[0];
    expect(JSON.parse(entry?.MessageBody ?? "{}")).toMatchObject({ lifecycleHookName: "agentfix-launch" });
  });

  it("switches to dry run when the console payload asks for it", async () => {
    const report = await handler({ dryRun: true }, CONTEXT);

    expect(report).toMatchObject({ dryRun: true, enqueued: 0 });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it("rejects a payload whose fields have the wrong type, naming them", async () => {
    await expect(handler({ dryRun: "yes" }, CONTEXT)).rejects.toThrow(/Invalid sweep event: dryRun/);
  });
});
