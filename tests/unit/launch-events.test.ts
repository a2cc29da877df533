import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
} from "@aws-sdk/client-auto-scaling";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  DescribeDocumentCommand,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearVersionCache } from "../../functions/core/agent/versions.js";
import { clock } from "../../functions/core/common/clock.js";
import { NO_LEASE } from "../../functions/core/common/lease.js";
import { defaultLaunchConfig, type LaunchConfig } from "../../functions/core/config.js";
import { agentDocumentNames } from "../../functions/core/contract.js";
import { advanceLaunches } from "../../functions/core/launch/advance.js";
import { clearHookCache } from "../../functions/core/launch/lifecycle.js";
import { reconcileQueueBatch } from "../../functions/core/launch/queue.js";
import { type LaunchBook, memoryBook } from "../../functions/core/launch/records.js";
import type { LaunchRequest } from "../../functions/core/launch/types.js";
import type { CommandSignal } from "../../functions/schemas/command-event.js";
import {
  commandSent,
  deploymentInProgress,
  installedAndVerified,
  installFailed,
  invocation,
  launchHook,
  lifecycleStates,
  listed,
  online,
  publishedPackage,
  running,
} from "./support/aws-answers.js";
import { fixture, launchEvent, sqsRecord } from "./support/launch-events.js";

const GROUP = "web-asg";
const HOOK = "agentfix-launch";
const { install: INSTALL } = agentDocumentNames("test");
const [A, B, C] = ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"];

const ssm = mockClient(SSMClient);
const autoScaling = mockClient(AutoScalingClient);
const dynamodb = mockClient(DynamoDBClient);
const sqs = mockClient(SQSClient);

/** AWS time moves only when a test says so: `later(ms)`. */
let now = Date.parse("2026-12-01T08:00:00Z");
const later = (ms: number) => {
  now += ms;
};
let book: LaunchBook;

const request = (instanceId: string): LaunchRequest => ({
  instanceId,
  group: GROUP,
  hook: HOOK,
  token: `token-${instanceId}`,
  transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
  startedAt: now,
  source: "event",
});
const ended = (instanceId: string, commandId: string, status = "Success"): CommandSignal => ({
  commandId,
  instanceId,
  documentName: INSTALL,
  status,
});

function step(
  input: { requests?: LaunchRequest[]; signals?: CommandSignal[] },
  config: Partial<LaunchConfig> = {},
) {
  return advanceLaunches(
    { requests: input.requests ?? [], signals: input.signals ?? [] },
    defaultLaunchConfig({ LIFECYCLE_HOOK_NAME: HOOK, ...config }),
    { deadline: now + 20_000, correlationId: "req-1", lease: NO_LEASE, book },
  );
}

const calls = (client: typeof ssm | typeof autoScaling) =>
  client.calls().map((call) => (call.args[0] as object).constructor.name.replace(/Command$/, ""));
const sends = () => ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
const completions = () =>
  autoScaling.commandCalls(CompleteLifecycleActionCommand).map((call) => call.args[0].input);

beforeEach(() => {
  const unscripted = (input: object) => {
    throw new Error(`no AWS answer scripted for ${JSON.stringify(input)}`);
  };
  ssm.reset().onAnyCommand().callsFake(unscripted);
  autoScaling.reset().onAnyCommand().callsFake(unscripted);
  dynamodb.reset().onAnyCommand().callsFake(unscripted);
  sqs.reset().onAnyCommand().callsFake(unscripted);
  vi.spyOn(clock, "now").mockImplementation(() => now);
  book = memoryBook();
  ssm.on(DescribeDocumentCommand).resolves(publishedPackage("AWSCodeDeployAgent", "1.8.1"));
  autoScaling.on(DescribeLifecycleHooksCommand).resolves(launchHook(GROUP, HOOK));
  autoScaling.on(CompleteLifecycleActionCommand).resolves({});
});
afterEach(() => {
  clearHookCache();
  clearVersionCache();
  vi.restoreAllMocks();
});
afterAll(() => {
  ssm.restore();
  autoScaling.restore();
  dynamodb.restore();
  sqs.restore();
});

describe("launch path with event completion", () => {
  it("looks at registration once per batch and comes back after the registration poll", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([]));
    const result = await step({ requests: [request(A), request(B)] });
    expect(result.instances.map((outcome) => outcome.outcome)).toEqual(["PENDING", "PENDING"]);
    // Looked at again on the next beat of the registration poll (every 10 s of the clock).
    expect(result.resumeAfterSeconds.get(A)).toBe(10 - ((now / 1000) % 10));
    // No Auto Scaling call at all: the event says the instance waits on our hook.
    expect(calls(ssm)).toEqual(["DescribeInstanceInformation"]);
    expect(calls(autoScaling)).toEqual(["DescribeLifecycleHooks"]);
  });

  it("sends one command to every instance of the batch that is ready, then waits for its end", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A, B, C]));
    ssm.on(SendCommandCommand).resolves(commandSent("cmd-1"));
    const result = await step({ requests: [request(A), request(B), request(C)] });
    expect(sends()).toEqual([expect.objectContaining({ DocumentName: INSTALL, InstanceIds: [A, B, C] })]);
    expect(result.instances.every((outcome) => outcome.outcome === "PENDING")).toBe(true);
    // The launch message comes back when the install is overdue, in case its end event is lost.
    expect(result.resumeAfterSeconds.get(A)).toBe(60);
    expect(calls(ssm)).not.toContain("ListCommandInvocations");
  });

  it("settles every instance whose end was signalled with one read of the command, and completes them", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A, B]));
    ssm.on(SendCommandCommand).resolves(commandSent("cmd-1"));
    await step({ requests: [request(A), request(B)] });
    later(30_000);
    ssm.resetHistory();
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "cmd-1" })
      .resolves(listed(installedAndVerified("cmd-1", A), installedAndVerified("cmd-1", B)));
    const result = await step({ signals: [ended(A, "cmd-1"), ended(B, "cmd-1")] });
    expect(calls(ssm)).toEqual(["ListCommandInvocations"]);
    expect(result.instances).toMatchObject([
      { instanceId: A, outcome: "CONTINUE", agentVersion: "1.8.1", installCommandIds: ["cmd-1"] },
      { instanceId: B, outcome: "CONTINUE" },
    ]);
    expect(completions()).toEqual([
      expect.objectContaining({ LifecycleActionToken: `token-${A}`, LifecycleActionResult: "CONTINUE" }),
      expect.objectContaining({ LifecycleActionToken: `token-${B}`, LifecycleActionResult: "CONTINUE" }),
    ]);

    // The launch message, back later, and a duplicate event find the launch done: no call, no report.
    ssm.resetHistory();
    autoScaling.resetHistory();
    later(30_000);
    const again = await step({ requests: [request(A)], signals: [ended(B, "cmd-1")] });
    expect(again.instances).toEqual([]);
    expect(calls(ssm)).toEqual([]);
    expect(completions()).toEqual([]);
  });

  it("settles the instances a read shows ended, whose events are still on the way, with no second read", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A, B, C]));
    ssm.on(SendCommandCommand).resolves(commandSent("cmd-1"));
    await step({ requests: [request(A), request(B), request(C)] });
    later(30_000);
    ssm.resetHistory();
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "cmd-1" })
      .resolves(
        listed(
          installedAndVerified("cmd-1", A),
          installedAndVerified("cmd-1", B),
          invocation("cmd-1", C, "InProgress"),
        ),
      );
    // A's event: the read shows B ended too, and B is completed now; C still installs.
    const first = await step({ signals: [ended(A, "cmd-1")] });
    expect(first.instances.map((outcome) => [outcome.instanceId, outcome.outcome])).toEqual([
      [A, "CONTINUE"],
      [B, "CONTINUE"],
    ]);
    // B's event, a moment later, finds its launch done: no call at all.
    later(2_000);
    const second = await step({ signals: [ended(B, "cmd-1")] });
    expect(second.instances).toEqual([]);
    expect(calls(ssm)).toEqual(["ListCommandInvocations"]);
  });

  it("lets an event that comes right after a read of its command wait for the next read", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A, B]));
    ssm.on(SendCommandCommand).resolves(commandSent("cmd-1"));
    await step({ requests: [request(A), request(B)] });
    later(30_000);
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "cmd-1" })
      .resolvesOnce(listed(installedAndVerified("cmd-1", A), invocation("cmd-1", B, "InProgress")))
      .resolves(listed(installedAndVerified("cmd-1", A), installedAndVerified("cmd-1", B)));
    await step({ signals: [ended(A, "cmd-1")] });
    later(2_000);
    // B ended just after the read: its event is handed back until 5 s after that read.
    const early = await step({ signals: [ended(B, "cmd-1")] });
    expect(early.deferred.get(B)).toBe(3);
    expect(ssm.commandCalls(ListCommandInvocationsCommand)).toHaveLength(1);
    later(3_000);
    const settled = await step({ signals: [ended(B, "cmd-1")] });
    expect(settled.instances[0]).toMatchObject({ instanceId: B, outcome: "CONTINUE" });
    expect(ssm.commandCalls(ListCommandInvocationsCommand)).toHaveLength(2);
  });

  it("looks the install up itself once it is overdue, when its end event was lost", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A]));
    ssm.on(SendCommandCommand).resolves(commandSent("cmd-1"));
    const launch = request(A);
    await step({ requests: [launch] });
    later(30_000);
    ssm.resetHistory();
    // Before it is overdue, a redelivery reads nothing.
    expect((await step({ requests: [launch] })).instances[0]?.outcome).toBe("PENDING");
    expect(calls(ssm)).toEqual([]);
    later(30_000);
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "cmd-1" })
      .resolves(listed(installedAndVerified("cmd-1", A)));
    const result = await step({ requests: [launch] });
    expect(result.instances[0]).toMatchObject({ outcome: "CONTINUE" });
    expect(calls(ssm)).toEqual(["ListCommandInvocations"]);
  });

  it("retries a failed install at once, in the same invocation", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A]));
    ssm.on(SendCommandCommand).resolvesOnce(commandSent("cmd-1")).resolves(commandSent("cmd-2"));
    await step({ requests: [request(A)] });
    later(20_000);
    ssm.on(ListCommandInvocationsCommand, { CommandId: "cmd-1" }).resolves(listed(installFailed("cmd-1", A)));
    const result = await step({ signals: [ended(A, "cmd-1", "Failed")] });
    expect(sends()).toHaveLength(2);
    expect(result.instances[0]).toMatchObject({ outcome: "PENDING", installCommandIds: ["cmd-1", "cmd-2"] });
    expect(result.instances[0]?.reason).toMatch(/attempt 2, command cmd-2/);
    expect(completions()).toEqual([]);
  });

  it("waits out a deployment running on the instance without using up an attempt", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A]));
    ssm.on(SendCommandCommand).resolvesOnce(commandSent("cmd-1")).resolves(commandSent("cmd-2"));
    await step({ requests: [request(A)] });
    later(20_000);
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "cmd-1" })
      .resolves(listed(deploymentInProgress("cmd-1", A, "d-RUNNING01", { before: running("1.7.1") })));
    autoScaling.on(DescribeAutoScalingInstancesCommand).resolves(lifecycleStates(GROUP, [A, "Pending:Wait"]));
    const result = await step({ signals: [ended(A, "cmd-1", "Failed")] });
    // The agent that ran at boot is older than 1.8.1: the AMI bakes it in, and the report says so.
    expect(result.instances[0]?.bakedAgent).toMatchObject({
      agentVersion: "1.7.1",
      expectedVersion: "1.8.1",
    });
    expect(sends()).toHaveLength(1);
    expect(result.instances[0]?.reason).toMatch(/deployment d-RUNNING01 runs on the instance/);
    expect(result.resumeAfterSeconds.get(A)).toBe(30);
    later(30_000);
    await step({ requests: [request(A)] });
    // Two attempts are allowed; the wait did not use one up.
    expect(sends()).toHaveLength(2);
    expect(sends()[1]).toMatchObject({ InstanceIds: [A] });
  });

  it("fails an instance that never registers, after its own registration deadline", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([]));
    autoScaling.on(DescribeAutoScalingInstancesCommand).resolves(lifecycleStates(GROUP, [A, "Pending:Wait"]));
    const launch = request(A);
    await step({ requests: [launch] }, { REGISTRATION_TIMEOUT_SECONDS: 120 });
    later(60_000);
    // Once a minute Auto Scaling says whether it still waits.
    await step({ requests: [launch] }, { REGISTRATION_TIMEOUT_SECONDS: 120 });
    expect(autoScaling.commandCalls(DescribeAutoScalingInstancesCommand)).toHaveLength(1);
    later(60_000);
    const result = await step({ requests: [launch] }, { REGISTRATION_TIMEOUT_SECONDS: 120 });
    expect(result.instances[0]).toMatchObject({ outcome: "ABANDON" });
    expect(result.instances[0]?.reason).toMatch(/never came Online with SSM/);
    expect(sends()).toEqual([]);
  });

  it("follows the install a cut-off invocation sent, and never sends a second one", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A]));
    // The invocation was cut off right after SendCommand: the record says "sending", with no command.
    ssm.on(SendCommandCommand).rejects(new Error("cut off"));
    await expect(step({ requests: [request(A)] })).rejects.toThrow("cut off");
    later(60_000);
    ssm.reset().onAnyCommand().rejects(new Error("unscripted"));
    ssm.on(DescribeDocumentCommand).resolves(publishedPackage("AWSCodeDeployAgent", "1.8.1"));
    ssm
      .on(ListCommandInvocationsCommand, { InstanceId: A })
      .resolves(listed(invocation("cmd-lost", A, "InProgress")));
    autoScaling.on(DescribeAutoScalingInstancesCommand).resolves(lifecycleStates(GROUP, [A, "Pending:Wait"]));
    const result = await step({ requests: [request(A)] });
    expect(result.instances[0]).toMatchObject({ outcome: "PENDING", installCommandIds: ["cmd-lost"] });
    expect(sends()).toEqual([]);
  });

  it("does not send again while the install a cut-off invocation may have sent is not listed yet", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A]));
    ssm.on(SendCommandCommand).rejects(new Error("cut off"));
    await expect(step({ requests: [request(A)] })).rejects.toThrow("cut off");
    later(10_000);
    ssm.reset().onAnyCommand().rejects(new Error("unscripted"));
    ssm.on(DescribeDocumentCommand).resolves(publishedPackage("AWSCodeDeployAgent", "1.8.1"));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([A]));
    ssm.on(SendCommandCommand).resolves(commandSent("cmd-2"));
    // Listed only after a moment: nothing yet, so nothing is sent.
    ssm.on(ListCommandInvocationsCommand, { InstanceId: A }).resolves(listed());
    await step({ requests: [request(A)] });
    expect(sends()).toEqual([]);
    // A minute on and still nothing listed: the install never went out, and is sent now.
    later(60_000);
    autoScaling.on(DescribeAutoScalingInstancesCommand).resolves(lifecycleStates(GROUP, [A, "Pending:Wait"]));
    const result = await step({ requests: [request(A)] });
    expect(sends()).toHaveLength(1);
    expect(result.instances[0]).toMatchObject({ installCommandIds: ["cmd-2"] });
  });
});

describe("the launch queue with event completion", () => {
  it("hands a launch record back for when it is due, and takes a command event off the queue", async () => {
    ssm.on(DescribeInstanceInformationCommand).resolves(online([]));
    sqs.on(ChangeMessageVisibilityCommand).resolves({});
    const commandEvent = fixture("ssm-command-invocation-status-change.json");
    commandEvent.detail["instance-id"] = B;
    commandEvent.detail["document-name"] = INSTALL;
    const report = await reconcileQueueBatch(
      { Records: [sqsRecord("m-launch", launchEvent(A)), sqsRecord("m-ssm", commandEvent)] },
      (work) => step(work),
      { queueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/launch", resumeAfterSeconds: 10 },
    );
    // The command event names an install this service does not know of: nothing to do, taken off.
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-launch" }]);
    expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((call) => call.args[0].input)).toEqual([
      // Back on the next 10-second beat of the registration poll, shared by every launch message.
      expect.objectContaining({
        ReceiptHandle: "receipt-m-launch",
        VisibilityTimeout: Math.max(1, Math.ceil(((Math.floor(now / 10_000) + 1) * 10_000 - now) / 1000)),
      }),
    ]);
  });

  it("rejects a malformed command event alone, naming the bad field", async () => {
    const commandEvent = fixture("ssm-command-invocation-status-change.json");
    commandEvent.detail["instance-id"] = "not-an-instance";
    const report = await reconcileQueueBatch(
      { Records: [sqsRecord("m-bad", commandEvent)] },
      (work) => step(work),
      { queueUrl: "", resumeAfterSeconds: 10 },
    );
    expect(report.failedRecords?.[0]?.error).toMatch(/detail\.instance-id/);
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-bad" }]);
  });
});
