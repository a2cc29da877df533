import { readFileSync } from "node:fs";
import { CompleteLifecycleActionCommand } from "@aws-sdk/client-auto-scaling";
import { ConditionalCheckFailedException, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import { SendCommandCommand } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { clock, setClockScale } from "../../functions/core/common/clock.js";
import { NO_LEASE } from "../../functions/core/common/lease.js";
import { defaultLaunchConfig, type LaunchConfig } from "../../functions/core/config.js";
import { clearHookCache } from "../../functions/core/launch/lifecycle.js";
import { type LaunchRequest, reconcileLaunches } from "../../functions/core/launch/reconcile.js";
import { handleLaunch } from "../../functions/launch.js";
import { FakeAws, type FakeInstance } from "./support/fake-aws.js";

// The handler reads its configuration when its module loads: give it a lease table to talk to.
vi.hoisted(() => {
  process.env.LEASE_TABLE = "agentfix-test-leases";
});

const fixture = (name: string) => JSON.parse(readFileSync(`tests/events/${name}`, "utf8"));

/** A real launch event from the AWS docs sample, pointed at one of the fake instances. */
function launchEvent(
  instanceId: string,
  overrides: Record<string, unknown> = {},
  file = "ec2-instance-launch-lifecycle-action.json",
) {
  const event = fixture(file);
  event.time = new Date(clock.now()).toISOString();
  event.detail = {
    ...event.detail,
    AutoScalingGroupName: "web-asg",
    LifecycleHookName: "agentfix-launch",
    EC2InstanceId: instanceId,
    LifecycleActionToken: `token-${instanceId}`,
    ...overrides,
  };
  return event;
}

function context(remainingMs = 600_000): Context {
  const end = clock.now() + remainingMs;
  return { awsRequestId: "req-1", getRemainingTimeInMillis: () => end - clock.now() } as unknown as Context;
}

const request = (instanceId: string, extra: Partial<LaunchRequest> = {}): LaunchRequest => ({
  instanceId,
  group: "web-asg",
  hook: "agentfix-launch",
  token: `token-${instanceId}`,
  transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
  startedAt: clock.now(),
  source: "event",
  ...extra,
});

const ids = (count: number, offset = 0) =>
  Array.from({ length: count }, (_, index) => `i-${(offset + index).toString(16).padStart(17, "0")}`);

let aws: FakeAws;
function fleet(instances: FakeInstance[]) {
  aws = new FakeAws(instances);
  return aws;
}

function run(requests: LaunchRequest[], config: Partial<LaunchConfig> = {}, remainingMs = 600_000) {
  return reconcileLaunches(requests, defaultLaunchConfig({ POLL_INTERVAL_MS: 5_000, ...config }), {
    deadline: clock.now() + remainingMs,
    correlationId: "req-1",
    lease: NO_LEASE,
  });
}

beforeAll(() => setClockScale(0.0005));
afterEach(() => {
  aws?.restore();
  clearHookCache();
});

describe("launch path", () => {
  it("installs, verifies and continues a new instance", async () => {
    fleet([{ id: "i-0000000000000000a" }]);
    const [outcome] = await run([request("i-0000000000000000a")]);
    expect(outcome).toMatchObject({ outcome: "CONTINUE", agentVersion: "1.8.1" });
    expect(aws.completions).toEqual([
      { instanceId: "i-0000000000000000a", token: "token-i-0000000000000000a", result: "CONTINUE" },
    ]);
    const [install] = aws.sendCommands("AWS-ConfigureAWSPackage");
    expect(install?.args[0].input).toMatchObject({
      InstanceIds: ["i-0000000000000000a"],
      Parameters: { action: ["Install"], name: ["AWSCodeDeployAgent"], version: [""] },
      Comment: "agentfix install req-1",
    });
    expect(aws.sendCommands("AWS-RunShellScript")).toHaveLength(1);
  });

  it("waits for a late SSM registration instead of failing", async () => {
    fleet([{ id: "i-0000000000000000b", registersAfterPolls: 4 }]);
    const [outcome] = await run([request("i-0000000000000000b")]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(1);
  });

  it("abandons an instance that never registers with SSM", async () => {
    fleet([{ id: "i-0000000000000000c", registersAfterPolls: 10_000 }]);
    const [outcome] = await run([request("i-0000000000000000c")], { REGISTRATION_TIMEOUT_SECONDS: 60 });
    expect(outcome).toMatchObject({ outcome: "ABANDON" });
    expect(outcome?.reason).toMatch(/never came Online/);
    expect(aws.sendCommands()).toHaveLength(0);
  });

  it("retries an install that fails once and then continues", async () => {
    fleet([{ id: "i-0000000000000000d", installs: ["failed", "success"] }]);
    const [outcome] = await run([request("i-0000000000000000d")]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(2);
  });

  it("abandons the instance when the install fails every time", async () => {
    fleet([{ id: "i-0000000000000000e", installs: ["failed"] }]);
    const [outcome] = await run([request("i-0000000000000000e")], { INSTALL_ATTEMPTS: 2 });
    expect(outcome?.outcome).toBe("ABANDON");
    expect(outcome?.reason).toMatch(/install .*Failed.* after 2 attempt/);
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(2);
    expect(aws.completions[0]?.result).toBe("ABANDON");
  });

  it("applies the failure result when the install reports Success but the agent does not run", async () => {
    fleet([{ id: "i-0000000000000000f", installs: ["success-dead"] }]);
    const [outcome] = await run([request("i-0000000000000000f")], { FAILURE_RESULT: "ABANDON" });
    expect(outcome?.outcome).toBe("ABANDON");
    expect(outcome?.reason).toMatch(/reported Success but the agent is stopped/);
  });

  it("completes with CONTINUE on failure when FAILURE_RESULT says so", async () => {
    fleet([{ id: "i-00000000000000010", installs: ["success-dead"] }]);
    const [outcome] = await run([request("i-00000000000000010")], { FAILURE_RESULT: "CONTINUE" });
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.reason).toMatch(/FAILURE_RESULT/);
  });

  it("fails verification when a pinned version is not the one running", async () => {
    fleet([{ id: "i-00000000000000011", installsVersion: "1.7.1" }]);
    const [outcome] = await run([request("i-00000000000000011")], { AGENT_VERSION: "1.8.1" });
    expect(outcome?.outcome).toBe("ABANDON");
    expect(outcome?.reason).toMatch(/1\.7\.1 is running, but version 1\.8\.1 is pinned/);
    const [install] = aws.sendCommands("AWS-ConfigureAWSPackage");
    expect(install?.args[0].input.Parameters?.version).toEqual(["1.8.1"]);
  });

  it("reports an instance that is no longer waiting as already completed, with no SSM call", async () => {
    fleet([{ id: "i-00000000000000012", lifecycleState: "InService" }]);
    const [outcome] = await run([request("i-00000000000000012")]);
    expect(outcome?.outcome).toBe("ALREADY_COMPLETED");
    expect(aws.ssm.calls()).toHaveLength(0);
  });

  it("treats 'No active Lifecycle Action found' on completion as already completed", async () => {
    fleet([{ id: "i-00000000000000013", installPolls: 3 }]);
    const pending = run([request("i-00000000000000013")]);
    await clock.sleep(12_000);
    const instance = aws.instances.get("i-00000000000000013");
    if (instance) instance.lifecycleState = "Pending:Proceed";
    const [outcome] = await pending;
    expect(outcome?.outcome).toBe("ALREADY_COMPLETED");
  });

  it("stops work on an instance terminated mid-install", async () => {
    fleet([{ id: "i-00000000000000014", installPolls: 50 }]);
    const pending = run([request("i-00000000000000014")]);
    await clock.sleep(15_000);
    const instance = aws.instances.get("i-00000000000000014");
    if (instance) instance.lifecycleState = "Terminated";
    const [outcome] = await pending;
    expect(outcome?.outcome).toBe("ALREADY_COMPLETED");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(1);
  });

  it("follows an install already in flight instead of sending a second one (duplicate delivery)", async () => {
    fleet([{ id: "i-00000000000000015", installPolls: 4 }]);
    const first = run([request("i-00000000000000015")], {}, 25_000);
    await first;
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(1);
    const [outcome] = await run([request("i-00000000000000015")]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(1);
  });

  it("retries throttled SSM calls and still completes", async () => {
    fleet([{ id: "i-00000000000000016" }]);
    const throttled = Object.assign(new Error("Rate exceeded"), {
      name: "ThrottlingException",
      $metadata: { httpStatusCode: 400 },
    });
    aws.ssm
      .on(SendCommandCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .callsFake((input) => ({ Command: { CommandId: "cmd-late", InstanceIds: input.InstanceIds } }));
    const [outcome] = await run([request("i-00000000000000016")], { VERIFY_AGENT: false });
    expect(aws.ssm.commandCalls(SendCommandCommand).length).toBeGreaterThanOrEqual(6);
    expect(outcome?.reason).not.toMatch(/Throttling/);
  });

  it("leaves a verified instance pending, not failed, when its completion stays throttled", async () => {
    fleet([{ id: "i-0000000000000001f" }]);
    const throttled = Object.assign(new Error("Rate exceeded"), {
      name: "Throttling",
      $metadata: { httpStatusCode: 400 },
    });
    aws.autoScaling.on(CompleteLifecycleActionCommand).rejects(throttled);
    const [outcome] = await run([request("i-0000000000000001f")], {}, 120_000);
    expect(outcome?.outcome).toBe("PENDING");
    expect(outcome?.reason).toMatch(
      /agent 1\.8\.1 running; completing the lifecycle action \(CONTINUE\) stayed throttled/,
    );
    expect(aws.autoScaling.commandCalls(CompleteLifecycleActionCommand).length).toBeGreaterThan(1);
  });

  it("ignores groups out of scope", async () => {
    fleet([{ id: "i-00000000000000017", group: "db-asg" }]);
    const [outcome] = await run([request("i-00000000000000017", { group: "db-asg" })], {
      TARGET_GROUPS: ["web-asg"],
    });
    expect(outcome).toMatchObject({
      outcome: "SKIPPED",
      reason: "group db-asg is not in scope (TARGET_GROUPS)",
    });
    expect(aws.autoScaling.calls()).toHaveLength(0);
  });

  it("sends 60 instances in two install commands and polls per command", async () => {
    const instanceIds = ids(60, 0x100);
    fleet(instanceIds.map((id) => ({ id })));
    const outcomes = await run(instanceIds.map((id) => request(id)));
    expect(outcomes.every((outcome) => outcome.outcome === "CONTINUE")).toBe(true);
    const installs = aws.sendCommands("AWS-ConfigureAWSPackage");
    expect(installs.map((call) => call.args[0].input.InstanceIds?.length)).toEqual([50, 10]);
    expect(aws.ssm.calls().length).toBeLessThan(60);
  });

  it("leaves unfinished instances pending, heartbeated, when the time budget runs out", async () => {
    fleet([{ id: "i-00000000000000018", installPolls: 1_000 }]);
    const [outcome] = await run([request("i-00000000000000018")], {}, 30_000);
    expect(outcome?.outcome).toBe("PENDING");
    expect(aws.heartbeats).toContainEqual({ instanceId: undefined, token: "token-i-00000000000000018" });
    expect(aws.completions).toHaveLength(0);
  });

  it("heartbeats a long wait once half the heartbeat timeout has passed", async () => {
    fleet([{ id: "i-00000000000000019", installPolls: 80 }]);
    const [outcome] = await run([request("i-00000000000000019")], {}, 1_500_000);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.heartbeats.length).toBeGreaterThanOrEqual(1);
  });

  it("makes no mutating call in DRY_RUN", async () => {
    fleet([{ id: "i-0000000000000001a" }]);
    const [outcome] = await run([request("i-0000000000000001a")], { DRY_RUN: true });
    expect(outcome?.outcome).toBe("SKIPPED");
    expect(outcome?.reason).toMatch(/dry run: would install AWSCodeDeployAgent/);
    expect(aws.sendCommands()).toHaveLength(0);
    expect(aws.completions).toHaveLength(0);
    expect(aws.heartbeats).toHaveLength(0);
  });

  it("installs on the way into the warm pool", async () => {
    fleet([{ id: "i-0000000000000001b", lifecycleState: "Warmed:Pending:Wait" }]);
    const [outcome] = await run([request("i-0000000000000001b", { origin: "EC2", destination: "WarmPool" })]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(1);
  });

  it("only verifies on the way out of the warm pool when the agent is current", async () => {
    fleet([{ id: "i-0000000000000001c", agentVersion: "1.8.1", agentRunning: true }]);
    const [outcome] = await run([
      request("i-0000000000000001c", { origin: "WarmPool", destination: "AutoScalingGroup" }),
    ]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(0);
    expect(aws.sendCommands("AWS-RunShellScript")).toHaveLength(1);
  });

  it("reinstalls on the way out of the warm pool when the agent is missing", async () => {
    fleet([{ id: "i-0000000000000001d" }]);
    const [outcome] = await run([
      request("i-0000000000000001d", { origin: "WarmPool", destination: "AutoScalingGroup" }),
    ]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-ConfigureAWSPackage")).toHaveLength(1);
    expect(aws.sendCommands("AWS-RunShellScript")).toHaveLength(2);
  });

  it("uses PowerShell to verify Windows instances", async () => {
    fleet([{ id: "i-0000000000000001e", platform: "Windows" }]);
    const [outcome] = await run([request("i-0000000000000001e")]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(aws.sendCommands("AWS-RunPowerShellScript")).toHaveLength(1);
  });
});

describe("launch handler", () => {
  it("handles a raw EventBridge event pasted into the console", async () => {
    fleet([{ id: "i-1234567890abcdef0" }]);
    const report = await handleLaunch(launchEvent("i-1234567890abcdef0"), context());
    expect(report.instances).toMatchObject([{ instanceId: "i-1234567890abcdef0", outcome: "CONTINUE" }]);
    expect(report.batchItemFailures).toBeUndefined();
  });

  it("completes by instance id on replay, resolving the group's one hook", async () => {
    fleet([{ id: "i-1234567890abcdef1" }]);
    const report = await handleLaunch(
      { instanceIds: ["i-1234567890abcdef1"], autoScalingGroupName: "web-asg" },
      context(),
    );
    expect(report.instances).toMatchObject([{ outcome: "CONTINUE", lifecycleHookName: "agentfix-launch" }]);
    expect(aws.completions).toEqual([
      { instanceId: "i-1234567890abcdef1", token: undefined, result: "CONTINUE" },
    ]);
  });

  it("processes the good records of a batch and fails only the malformed one", async () => {
    fleet([{ id: "i-1234567890abcdef2" }]);
    const bad = launchEvent("i-1234567890abcdef3");
    bad.detail.EC2InstanceId = "i-1;rm -rf /";
    delete bad.detail.LifecycleActionToken;
    const report = await handleLaunch(
      {
        Records: [
          {
            messageId: "m-good",
            body: JSON.stringify(launchEvent("i-1234567890abcdef2")),
            eventSource: "aws:sqs",
          },
          { messageId: "m-bad", body: JSON.stringify(bad), eventSource: "aws:sqs" },
          {
            messageId: "m-test",
            body: JSON.stringify(fixture("autoscaling-test-notification.lifecycle-hook-sns-sqs.json")),
            eventSource: "aws:sqs",
          },
        ],
      },
      context(),
    );
    expect(report.instances).toMatchObject([{ instanceId: "i-1234567890abcdef2", outcome: "CONTINUE" }]);
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-bad" }]);
    expect(report.failedRecords?.[0]?.error).toMatch(
      /detail\.EC2InstanceId.*detail\.LifecycleActionToken|detail\.LifecycleActionToken.*detail\.EC2InstanceId/,
    );
    expect(report.skippedRecords).toEqual([{ messageId: "m-test", reason: "autoscaling:TEST_NOTIFICATION" }]);
    for (const call of aws.sendCommands()) expect(JSON.stringify(call.args[0].input)).not.toContain("rm -rf");
  });

  it("returns unfinished instances as batch item failures, handed back to the queue to resume soon", async () => {
    fleet([{ id: "i-1234567890abcdef4", installPolls: 1_000 }]);
    const report = await handleLaunch(
      {
        Records: [
          {
            messageId: "m-slow",
            receiptHandle: "receipt-slow",
            body: JSON.stringify(launchEvent("i-1234567890abcdef4")),
            eventSource: "aws:sqs",
          },
        ],
      },
      context(60_000),
    );
    expect(report.instances[0]?.outcome).toBe("PENDING");
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-slow" }]);
    expect(aws.sqs.commandCalls(ChangeMessageVisibilityCommand).map((call) => call.args[0].input)).toEqual([
      {
        QueueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-launch",
        ReceiptHandle: "receipt-slow",
        VisibilityTimeout: 10,
      },
    ]);
  });

  it("leaves an instance another invocation holds to the visibility timeout", async () => {
    fleet([{ id: "i-1234567890abcdef7" }]);
    aws.dynamodb
      .on(PutItemCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} }),
      );
    const report = await handleLaunch(
      {
        Records: [
          {
            messageId: "m-busy",
            receiptHandle: "receipt-busy",
            body: JSON.stringify(launchEvent("i-1234567890abcdef7")),
            eventSource: "aws:sqs",
          },
        ],
      },
      context(),
    );
    expect(report.instances[0]).toMatchObject({ outcome: "PENDING", busyElsewhere: true });
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-busy" }]);
    expect(aws.sqs.commandCalls(ChangeMessageVisibilityCommand)).toHaveLength(0);
    expect(aws.sendCommands()).toHaveLength(0);
  });

  it("skips non-launch transitions", async () => {
    fleet([{ id: "i-1234567890abcdef5" }]);
    const report = await handleLaunch(
      launchEvent("i-1234567890abcdef5", { LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING" }),
      context(),
    );
    expect(report.instances[0]).toMatchObject({
      outcome: "SKIPPED",
      reason: expect.stringMatching(/not a launch/),
    });
  });

  it("rejects a malformed console event with one error naming every bad field", async () => {
    fleet([]);
    const event = launchEvent("i-1234567890abcdef6");
    event.detail.EC2InstanceId = 42;
    event.detail.AutoScalingGroupName = "";
    await expect(handleLaunch(event, context())).rejects.toThrow(
      /detail\.AutoScalingGroupName.*detail\.EC2InstanceId|detail\.EC2InstanceId.*detail\.AutoScalingGroupName/,
    );
    await expect(handleLaunch({ instanceIds: ["nope"] }, context())).rejects.toThrow(
      /instanceIds\.0.*autoScalingGroupName/,
    );
    expect(aws.ssm.calls()).toHaveLength(0);
  });
});
