import {
  CancelCommandCommand,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { Traffic } from "../../sandbox/server/traffic.js";
import { expectAwsError, pass, sdkClients, testSandbox } from "./helpers.js";

const INSTALL = {
  action: ["Install"],
  installationType: ["Uninstall and reinstall"],
  name: ["AWSCodeDeployAgent"],
  version: [""],
  additionalArguments: ["{}"],
};
const VERIFY = ["# agentfix verify-agent", "systemctl is-active codedeploy-agent"];

describe("SSM over the wire", () => {
  let sandbox: Sandbox;
  let ssm: ReturnType<typeof sdkClients>["ssm"];
  let ids: string[];

  beforeAll(async () => {
    // Slower clock and wide windows: the assertions on "not yet" and "still running" must hold on a busy machine.
    sandbox = await testSandbox({
      seed: "ssm",
      clockScale: 0.01,
      world: { ssm: { visibilitySeconds: 10, installSeconds: 100 } },
    });
    ssm = sdkClients(sandbox.endpoint).ssm;
    const { world } = sandbox;
    world.autoScaling.createGroup({
      name: "web",
      image: {
        imageId: "ami-1",
        registrationDelaySeconds: 10,
        bakedAgent: { version: "1.6.0", running: true },
      },
    });
    world.autoScaling.createGroup({
      name: "dark",
      image: { imageId: "ami-2", neverRegistersProbability: 1 },
    });
    world.autoScaling.setDesiredCapacity("web", 7);
    world.autoScaling.setDesiredCapacity("dark", 1);
    await sandbox.waitFor(() => world.ssm.managedInstances().length === 7, {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    ids = world.ssm.managedInstances().map((instance) => instance.id);
  });
  afterAll(() => sandbox.close());

  it("lists registered instances page by page and filters them by id", async () => {
    const first = await ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 5 }));
    expect(first.InstanceInformationList).toHaveLength(5);
    expect(first.NextToken).toBeTruthy();
    const second = await ssm.send(
      new DescribeInstanceInformationCommand({ MaxResults: 5, NextToken: first.NextToken }),
    );
    expect(second.InstanceInformationList).toHaveLength(2);
    expect(second.NextToken).toBeUndefined();
    const row = first.InstanceInformationList![0]!;
    expect(row).toMatchObject({ PingStatus: "Online", PlatformType: "Linux", ResourceType: "EC2Instance" });
    expect(row.LastPingDateTime).toBeInstanceOf(Date);

    const dark = [...sandbox.world.autoScaling.group("dark").instances];
    const filtered = await ssm.send(
      new DescribeInstanceInformationCommand({
        Filters: [{ Key: "InstanceIds", Values: [ids[0]!, ...dark] }],
        MaxResults: 50,
      }),
    );
    // An instance that has not registered is simply absent.
    expect(filtered.InstanceInformationList?.map((item) => item.InstanceId)).toEqual([ids[0]]);
  });

  it("rejects MaxResults outside 5..50 and unknown filter keys", async () => {
    await expectAwsError(
      ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 51 })),
      "ValidationException",
      400,
      /Value '51' at 'maxResults' failed to satisfy constraint/,
    );
    await expectAwsError(
      ssm.send(new DescribeInstanceInformationCommand({ MaxResults: 4 })),
      "ValidationException",
      400,
    );
    await expectAwsError(
      ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "Colour", Values: ["red"] }] })),
      "InvalidFilterKey",
      400,
    );
  });

  it("refuses commands to more than 50 instances and to unregistered ones", async () => {
    const many = Array.from({ length: 51 }, (_, index) => `i-${String(index).padStart(17, "0")}`);
    await expectAwsError(
      ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-ConfigureAWSPackage",
          InstanceIds: many,
          Parameters: INSTALL,
        }),
      ),
      "ValidationException",
      400,
      /Member must have length less than or equal to 50/,
    );
    const dark = [...sandbox.world.autoScaling.group("dark").instances][0]!;
    await expectAwsError(
      ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-ConfigureAWSPackage",
          InstanceIds: [ids[0]!, dark],
          Parameters: INSTALL,
        }),
      ),
      "InvalidInstanceId",
      400,
      `Instances [[${dark}]] not in a valid state for account 123456789012`,
    );
    await expectAwsError(
      ssm.send(new SendCommandCommand({ DocumentName: "AWS-NoSuchDocument", InstanceIds: [ids[0]!] })),
      "InvalidDocument",
      400,
    );
  });

  it("installs the agent, with invocations that appear only after a moment and then carry plugin output", async () => {
    const sent = await ssm.send(
      new SendCommandCommand({
        DocumentName: "AWS-ConfigureAWSPackage",
        InstanceIds: ids.slice(0, 3),
        Parameters: INSTALL,
        Comment: "agentfix install test",
        TimeoutSeconds: 600,
      }),
    );
    const commandId = sent.Command!.CommandId!;
    expect(commandId).toHaveLength(36);
    expect(sent.Command).toMatchObject({
      Status: "Pending",
      TargetCount: 3,
      Comment: "agentfix install test",
    });
    // Eventual consistency: right after SendCommand the invocations are not there yet.
    const early = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId }));
    expect(early.CommandInvocations).toEqual([]);
    await expectAwsError(
      ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: ids[0]! })),
      "InvocationDoesNotExist",
      400,
    );
    await pass(14);
    const running = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId }));
    expect(running.CommandInvocations?.map((item) => item.Status)).toEqual([
      "InProgress",
      "InProgress",
      "InProgress",
    ]);
    expect(running.CommandInvocations?.[0]?.StatusDetails).toBe("In Progress");
    await sandbox.waitFor(
      () =>
        sandbox.world.ssm.commands
          .get(commandId)!
          .invocations.every((invocation) => invocation.status === "Success"),
      { timeoutSeconds: 300, pollSeconds: 1 },
    );
    const done = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, Details: true }));
    expect(done.CommandInvocations).toHaveLength(3);
    for (const invocation of done.CommandInvocations!) {
      expect(invocation.Status).toBe("Success");
      expect(invocation.CommandPlugins?.[0]?.Name).toBe("configurePackage");
      expect(invocation.CommandPlugins?.[0]?.Output).toContain(
        "Successfully installed AWSCodeDeployAgent 1.8.1",
      );
    }
    const resumed = await ssm.send(
      new ListCommandInvocationsCommand({
        Filters: [
          { key: "DocumentName", value: "AWS-ConfigureAWSPackage" },
          {
            key: "InvokedAfter",
            value: new Date(Date.parse(sent.Command!.RequestedDateTime!.toISOString()) - 1000).toISOString(),
          },
        ],
      }),
    );
    expect(resumed.CommandInvocations?.map((item) => item.InstanceId).sort()).toEqual(ids.slice(0, 3).sort());
  });

  it("answers the verification script from the instance's agent, in the agreed one-line format", async () => {
    const sent = await ssm.send(
      new SendCommandCommand({
        DocumentName: "AWS-RunShellScript",
        InstanceIds: [ids[0]!, ids[6]!],
        Parameters: { commands: VERIFY },
      }),
    );
    await pass(16);
    const upgraded = await ssm.send(
      new GetCommandInvocationCommand({ CommandId: sent.Command!.CommandId!, InstanceId: ids[0]! }),
    );
    expect(upgraded).toMatchObject({ Status: "Success", ResponseCode: 0, PluginName: "aws:runShellScript" });
    expect(upgraded.StandardOutputContent).toBe(
      "AGENTFIX_AGENT_STATUS=running AGENTFIX_AGENT_VERSION=1.8.1\n",
    );
    const baked = await ssm.send(
      new GetCommandInvocationCommand({ CommandId: sent.Command!.CommandId!, InstanceId: ids[6]! }),
    );
    expect(baked.StandardOutputContent).toBe("AGENTFIX_AGENT_STATUS=running AGENTFIX_AGENT_VERSION=1.6.0\n");
  });

  it("pages invocations, validates filters and cancels commands", async () => {
    const page = await ssm.send(new ListCommandInvocationsCommand({ MaxResults: 2 }));
    expect(page.CommandInvocations).toHaveLength(2);
    expect(page.NextToken).toBeTruthy();
    await expectAwsError(
      ssm.send(new ListCommandInvocationsCommand({ MaxResults: 51 })),
      "ValidationException",
      400,
    );
    await expectAwsError(
      ssm.send(
        new ListCommandInvocationsCommand({ Filters: [{ key: "ExecutionStage", value: "Executing" }] }),
      ),
      "InvalidFilterKey",
      400,
    );
    await expectAwsError(
      ssm.send(new ListCommandInvocationsCommand({ NextToken: "forged" })),
      "InvalidNextToken",
      400,
    );
    const sent = await ssm.send(
      new SendCommandCommand({
        DocumentName: "AWS-ConfigureAWSPackage",
        InstanceIds: [ids[4]!],
        Parameters: { ...INSTALL, version: ["1.7.1"] },
      }),
    );
    await ssm.send(new CancelCommandCommand({ CommandId: sent.Command!.CommandId! }));
    await pass(12);
    const listed = await ssm.send(new ListCommandsCommand({ CommandId: sent.Command!.CommandId! }));
    expect(listed.Commands?.[0]).toMatchObject({ Status: "Cancelled", TargetCount: 1, CompletedCount: 1 });
  });

  it("fails a second install sent while one is in flight, and counts it", async () => {
    const before = sandbox.world.counters.duplicateInstalls;
    const first = await ssm.send(
      new SendCommandCommand({
        DocumentName: "AWS-ConfigureAWSPackage",
        InstanceIds: [ids[5]!],
        Parameters: INSTALL,
      }),
    );
    await pass(3);
    const second = await ssm.send(
      new SendCommandCommand({
        DocumentName: "AWS-ConfigureAWSPackage",
        InstanceIds: [ids[5]!],
        Parameters: INSTALL,
      }),
    );
    await pass(12);
    const failed = await ssm.send(
      new GetCommandInvocationCommand({ CommandId: second.Command!.CommandId!, InstanceId: ids[5]! }),
    );
    expect(failed.Status).toBe("Failed");
    expect(failed.StandardErrorContent).toBe(
      'Package "AWSCodeDeployAgent" is already in the process of action "Install"',
    );
    expect(sandbox.world.counters.duplicateInstalls).toBe(before + 1);
    await sandbox.waitFor(
      () => sandbox.world.ssm.commands.get(first.Command!.CommandId!)!.invocations[0]!.status === "Success",
      { timeoutSeconds: 300, pollSeconds: 1 },
    );
    const succeeded = await ssm.send(
      new GetCommandInvocationCommand({ CommandId: first.Command!.CommandId!, InstanceId: ids[5]! }),
    );
    expect(succeeded.Status).toBe("Success");
  });

  it("throttles per operation with ThrottlingException and injects 5xx errors, counting both", async () => {
    sandbox.server.traffic = new Traffic({
      rateLimits: { "SSM.DescribeInstanceInformation": { rate: 0.001, burst: 2 } },
      errorRates: { "SSM.ListCommands": 1 },
    });
    const before = sandbox.counters.throttled["SSM.DescribeInstanceInformation"] ?? 0;
    await ssm.send(new DescribeInstanceInformationCommand({}));
    await ssm.send(new DescribeInstanceInformationCommand({}));
    await expectAwsError(
      ssm.send(new DescribeInstanceInformationCommand({})),
      "ThrottlingException",
      400,
      "Rate exceeded",
    );
    // Other operations keep their own bucket.
    await ssm.send(new ListCommandInvocationsCommand({ MaxResults: 1 }));
    expect(sandbox.counters.throttled["SSM.DescribeInstanceInformation"]).toBe(before + 1);
    await expectAwsError(ssm.send(new ListCommandsCommand({})), "InternalServerError", 500);
    expect(sandbox.counters.faults["SSM.ListCommands"]).toBe(1);
    expect(sandbox.counters.calls["SSM.DescribeInstanceInformation"]).toBeGreaterThanOrEqual(3);
  });
});
