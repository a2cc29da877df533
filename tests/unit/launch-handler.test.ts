import { CompleteLifecycleActionCommand } from "@aws-sdk/client-auto-scaling";
import type { Context } from "aws-lambda";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clock } from "../../functions/core/common/clock.js";
import { handleLaunch } from "../../functions/launch.js";
import { fixture, launchEvent, sqsRecord } from "./support/launch-events.js";
import { autoScaling, commandEvent, GROUP, HOOK, LaunchWorld, sqs, ssm } from "./support/launch-world.js";

// The handler reads its configuration when its module loads (no table: records are kept in memory).
vi.hoisted(() => {
  process.env.STAGE = "test";
  process.env.TARGET_GROUPS = "web-asg";
  process.env.LIFECYCLE_HOOK_NAME = "agentfix-launch";
});

const ID = "i-0000000000000000a";
let world: LaunchWorld;
beforeEach(() => {
  world = new LaunchWorld();
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => {
  ssm.restore();
  autoScaling.restore();
  sqs.restore();
});

function context(remainingMs = 300_000): Context {
  const end = clock.now() + remainingMs;
  return {
    awsRequestId: `req-${clock.now()}`,
    getRemainingTimeInMillis: () => end - clock.now(),
  } as unknown as Context;
}
const completions = () =>
  autoScaling.commandCalls(CompleteLifecycleActionCommand).map((call) => call.args[0].input);

describe("the launch handler", () => {
  it("follows a raw EventBridge event pasted into the console to its end", async () => {
    const [event] = world.launch([ID]);
    const report = await handleLaunch(event, context());
    expect(report.instances).toMatchObject([{ instanceId: ID, outcome: "CONTINUE" }]);
    expect(completions()).toEqual([
      expect.objectContaining({
        LifecycleHookName: HOOK,
        LifecycleActionResult: "CONTINUE",
        LifecycleActionToken: `token-${ID}`,
      }),
    ]);
  });

  it("completes a replay by instance id, resolving the group's one hook", async () => {
    const id = "i-0000000000000000c";
    world.launch([id]);
    const report = await handleLaunch({ instanceIds: [id], autoScalingGroupName: GROUP }, context());
    expect(report.instances).toMatchObject([{ outcome: "CONTINUE", lifecycleHookName: HOOK }]);
    expect(completions()).toEqual([
      expect.objectContaining({ InstanceId: id, LifecycleActionResult: "CONTINUE" }),
    ]);
    // Replayed again once done: Auto Scaling says our action is over, and the report says so.
    const again = await handleLaunch({ instanceIds: [id], autoScalingGroupName: GROUP }, context());
    expect(again.instances).toMatchObject([{ outcome: "ALREADY_COMPLETED" }]);
  });

  it("processes the good records of a batch and fails only the malformed one", async () => {
    const [event] = world.launch(["i-0000000000000000d"], { registerAfterMs: 0 });
    const bad = launchEvent("i-0000000000000000b");
    bad.detail.EC2InstanceId = "not-an-instance";
    const report = await handleLaunch(
      {
        Records: [
          sqsRecord("m-good", event),
          sqsRecord("m-bad", bad),
          sqsRecord("m-test", fixture("autoscaling-test-notification.lifecycle-hook-sns-sqs.json")),
        ],
      },
      context(),
    );
    expect(report.instances).toMatchObject([{ instanceId: "i-0000000000000000d", outcome: "PENDING" }]);
    expect(report.failedRecords?.map((record) => record.messageId)).toEqual(["m-bad"]);
    expect(report.failedRecords?.[0]?.error).toMatch(/detail\.EC2InstanceId/);
    expect(report.skippedRecords).toEqual([{ messageId: "m-test", reason: "autoscaling:TEST_NOTIFICATION" }]);
    // The unfinished launch stays on the queue too, handed back for when it is next due.
    expect(report.batchItemFailures?.map((item) => item.itemIdentifier).sort()).toEqual(["m-bad", "m-good"]);
  });

  it("rejects a malformed console event with one error naming every bad field", async () => {
    const event = launchEvent("i-1234567890abcdef6");
    event.detail.EC2InstanceId = 42;
    event.detail.AutoScalingGroupName = "";
    await expect(handleLaunch(event, context())).rejects.toThrow(
      /detail\.AutoScalingGroupName.*detail\.EC2InstanceId|detail\.EC2InstanceId.*detail\.AutoScalingGroupName/,
    );
    await expect(handleLaunch({ instanceIds: ["nope"] }, context())).rejects.toThrow(
      /instanceIds\.0.*autoScalingGroupName/,
    );
    const command = commandEvent("c-1", ID, "Success") as { detail: Record<string, unknown> };
    command.detail["command-id"] = "";
    await expect(handleLaunch(command, context())).rejects.toThrow(/detail\.command-id/);
    expect(ssm.calls()).toHaveLength(0);
    expect(autoScaling.calls()).toHaveLength(0);
  });
});
