import {
  type CommandFilter,
  type CommandInvocation,
  CreateDocumentCommand,
  DescribeDocumentCommand,
  GetCommandInvocationCommand,
  GetDocumentCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installDocumentContent } from "../../functions/core/agent/documents.js";
import { INSTALL_STEPS, installDocumentName } from "../../functions/core/contract.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import type { Instance } from "../../sandbox/world/instances.js";
import { expectAwsError, REVISION, sdkClients, testSandbox } from "./helpers.js";

const NAME = installDocumentName("test");
const STEP_ORDER = [
  INSTALL_STEPS.skipIfCurrentLinux,
  INSTALL_STEPS.skipIfCurrentWindows,
  INSTALL_STEPS.guardLinux,
  INSTALL_STEPS.guardWindows,
  INSTALL_STEPS.install,
  INSTALL_STEPS.verifyLinux,
  INSTALL_STEPS.verifyWindows,
];
const PRIOR_EXIT = /^Plugin with name aws:\w+ and id \w+ skipped due to prior step with an exit condition$/;
const ON_FAILURE_NOTE = "Step was found to have onFailure property. Further document steps will be skipped.";

describe("SSM documents of the account over the wire", () => {
  let sandbox: Sandbox;
  let ssm: ReturnType<typeof sdkClients>["ssm"];
  const agent1_8_1 = { package: "AWSCodeDeployAgent", version: "1.8.1", running: true } as const;
  const agent1_6_0 = { package: "AWSCodeDeployAgent", version: "1.6.0", running: true } as const;
  const noAgent = { package: null, version: null, running: false };

  beforeAll(async () => {
    sandbox = await testSandbox({
      seed: "ssm-documents",
      world: { codeDeploy: { eventSeconds: { DownloadBundle: 120 } } },
    });
    ssm = sdkClients(sandbox.endpoint).ssm;
    sandbox.world.autoScaling.createGroup({ name: "fleet", image: { imageId: "ami-1" } });
    sandbox.world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-2" } });
  });
  afterAll(() => sandbox.close());

  const running = (fields: { platform?: "Linux" | "Windows"; agent: Instance["agent"] }, group = "fleet") =>
    sandbox.world.addRunningInstance(group, { platform: fields.platform, agent: { ...fields.agent } });

  async function install(instances: Instance[], parameters: Record<string, string[]>) {
    const sent = await ssm.send(
      new SendCommandCommand({
        DocumentName: NAME,
        InstanceIds: instances.map((instance) => instance.id),
        Parameters: parameters,
      }),
    );
    return sent.Command!;
  }

  /** Waits for the command to end everywhere, then lists its invocations with their plugins. */
  async function finished(commandId: string): Promise<Map<string, CommandInvocation>> {
    const command = sandbox.world.ssm.commands.get(commandId)!;
    await sandbox.waitFor(
      () => command.invocations.every((invocation) => sandbox.world.ssm.isTerminal(invocation.status)),
      { timeoutSeconds: 600, pollSeconds: 1 },
    );
    const listed = await ssm.send(new ListCommandInvocationsCommand({ CommandId: commandId, Details: true }));
    return new Map(listed.CommandInvocations!.map((invocation) => [invocation.InstanceId!, invocation]));
  }

  const plugin = (invocation: CommandInvocation | undefined, name: string) =>
    invocation?.CommandPlugins?.find((candidate) => candidate.Name === name);

  it("creates the service's document and gives it back as it was sent", async () => {
    const content = JSON.stringify(installDocumentContent("test"));
    const created = await ssm.send(
      new CreateDocumentCommand({
        Name: NAME,
        Content: content,
        DocumentType: "Command",
        DocumentFormat: "JSON",
      }),
    );
    expect(created.DocumentDescription).toMatchObject({
      Name: NAME,
      DocumentType: "Command",
      SchemaVersion: "2.2",
      Status: "Active",
      DocumentVersion: "1",
      Owner: "123456789012",
      PlatformTypes: ["Windows", "Linux", "MacOS"],
    });
    expect(created.DocumentDescription?.Parameters?.map((parameter) => parameter.Name)).toEqual([
      "packageName",
      "version",
      "expectedVersion",
      "allowRestart",
    ]);

    const described = await ssm.send(new DescribeDocumentCommand({ Name: NAME }));
    expect(described.Document).toMatchObject({
      Name: NAME,
      DocumentType: "Command",
      SchemaVersion: "2.2",
    });
    const fetched = await ssm.send(new GetDocumentCommand({ Name: NAME }));
    expect(fetched).toMatchObject({ Name: NAME, DocumentType: "Command", DocumentFormat: "JSON" });
    expect(fetched.Content).toBe(content);

    await expectAwsError(
      ssm.send(new CreateDocumentCommand({ Name: NAME, Content: content, DocumentType: "Command" })),
      "DocumentAlreadyExists",
      400,
    );
    for (const reserved of ["aws-install-agent", "AWSCodeDeployAgentCopy", "amazon-agent", "amzn-agent"]) {
      await expectAwsError(
        ssm.send(new CreateDocumentCommand({ Name: reserved, Content: content, DocumentType: "Command" })),
        "ValidationException",
        400,
      );
    }
    await expectAwsError(
      ssm.send(new CreateDocumentCommand({ Name: "ab", Content: content, DocumentType: "Command" })),
      "ValidationException",
      400,
      /Member must satisfy regular expression pattern/,
    );
    await expectAwsError(
      ssm.send(new CreateDocumentCommand({ Name: "half-written", Content: "{", DocumentType: "Command" })),
      "InvalidDocumentContent",
      400,
    );
    await expectAwsError(
      ssm.send(new DescribeDocumentCommand({ Name: "no-such-document" })),
      "InvalidDocument",
      400,
    );
  });

  it("describes the Distributor packages with their newest published version", async () => {
    const v1 = await ssm.send(new DescribeDocumentCommand({ Name: "AWSCodeDeployAgent" }));
    expect(v1.Document).toMatchObject({
      Name: "AWSCodeDeployAgent",
      DocumentType: "Package",
      VersionName: "1.8.1",
    });
    const v2 = await ssm.send(new DescribeDocumentCommand({ Name: "AWSCodeDeployAgentV2" }));
    expect(v2.Document).toMatchObject({ DocumentType: "Package", VersionName: "2.1.0" });
    await expectAwsError(
      ssm.send(new DescribeDocumentCommand({ Name: "AWSCodeDeployAgentV3" })),
      "InvalidDocument",
      400,
    );
    const shell = await ssm.send(new DescribeDocumentCommand({ Name: "AWS-RunShellScript" }));
    expect(shell.Document).toMatchObject({ DocumentType: "Command", Owner: "Amazon" });
  });

  it("refuses parameters the install document does not define or accept, naming none of them", async () => {
    const instance = running({ agent: agent1_8_1 });
    const valid = { packageName: ["AWSCodeDeployAgent"], version: ["1.8.1"], expectedVersion: ["1.8"] };
    for (const parameters of [
      { ...valid, colour: ["blue"] },
      { ...valid, packageName: ["AWSCloudWatchAgent"] },
      { ...valid, version: ["latest"] },
      { ...valid, expectedVersion: ["1.8", "1.7"] },
      { version: ["1.8.1"] },
    ]) {
      await expectAwsError(
        install([instance], parameters),
        "InvalidParameters",
        400,
        "Parameters provided in document are invalid or not supported.",
      );
    }
  });

  it("skips the install, ending with Success, when the agent already runs the expected version", async () => {
    const instance = running({ agent: agent1_8_1 });
    const installsBefore = sandbox.world.counters.installsSent;
    const command = await install([instance], {
      packageName: ["AWSCodeDeployAgent"],
      version: ["1.8.1"],
      expectedVersion: ["1.8"],
    });
    const invocation = (await finished(command.CommandId!)).get(instance.id);
    expect(invocation).toMatchObject({ Status: "Success", StatusDetails: "Success" });
    expect(invocation!.CommandPlugins!.map((step) => step.Name)).toEqual(STEP_ORDER);
    const skip = plugin(invocation, INSTALL_STEPS.skipIfCurrentLinux)!;
    // onFailure: successAndExit turns the failed step into a success with exit code 168.
    expect(skip).toMatchObject({ Status: "Success", ResponseCode: 168 });
    expect(skip.Output).toContain("AGENTFIX_BEFORE_STATUS=running AGENTFIX_BEFORE_VERSION=1.8.1");
    expect(skip.Output).toContain("AGENTFIX_ALREADY_CURRENT=1.8.1");
    for (const later of STEP_ORDER.slice(2)) {
      expect(plugin(invocation, later), later).toMatchObject({ Status: "Success", StatusDetails: "Skipped" });
    }
    expect(plugin(invocation, INSTALL_STEPS.install)?.Output).toMatch(PRIOR_EXIT);
    const step = await ssm.send(
      new GetCommandInvocationCommand({
        CommandId: command.CommandId!,
        InstanceId: instance.id,
        PluginName: INSTALL_STEPS.skipIfCurrentLinux,
      }),
    );
    expect(step.StandardOutputContent).toContain(ON_FAILURE_NOTE);
    expect(instance.agent).toMatchObject(agent1_8_1);
    expect(sandbox.world.counters.installsSent).toBe(installsBefore);
    expect(instance.milestones.verified).toBeDefined();
  });

  it("runs only the Linux steps on Linux and only the Windows steps on Windows, installing and verifying", async () => {
    const linux = running({ agent: agent1_6_0 });
    const windows = running({ platform: "Windows", agent: noAgent });
    const before = { ...sandbox.world.counters };
    const command = await install([linux, windows], {
      packageName: ["AWSCodeDeployAgent"],
      version: ["1.8.1"],
      expectedVersion: ["1.8.1"],
      // CodeDeploy said no deployment is in flight: the running 1.6.0 may be restarted.
      allowRestart: ["yes"],
    });
    const invocations = await finished(command.CommandId!);
    for (const instance of [linux, windows]) {
      const invocation = invocations.get(instance.id);
      expect(invocation, instance.platform).toMatchObject({ Status: "Success", DocumentName: NAME });
      expect(invocation!.CommandPlugins!.map((step) => step.Name)).toEqual(STEP_ORDER);
      expect(plugin(invocation, INSTALL_STEPS.install)).toMatchObject({ Status: "Success", ResponseCode: 0 });
      expect(plugin(invocation, INSTALL_STEPS.install)?.Output).toContain(
        "Successfully installed AWSCodeDeployAgent 1.8.1",
      );
      expect(instance.agent).toMatchObject({ version: "1.8.1", running: true });
      expect(instance.milestones.verified).toBeDefined();
    }
    const onLinux = invocations.get(linux.id);
    expect(plugin(onLinux, INSTALL_STEPS.verifyLinux)).toMatchObject({
      Status: "Success",
      StatusDetails: "Success",
      Output: "AGENTFIX_AGENT_STATUS=running AGENTFIX_AGENT_VERSION=1.8.1\n",
    });
    expect(plugin(onLinux, INSTALL_STEPS.guardLinux)?.Output).toBe(
      "AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=none\n",
    );
    expect(plugin(onLinux, INSTALL_STEPS.verifyWindows)).toMatchObject({
      Status: "Success",
      StatusDetails: "Skipped",
      ResponseCode: 0,
      Output: `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, Windows]'. Step name: ${INSTALL_STEPS.verifyWindows}`,
    });
    const onWindows = invocations.get(windows.id);
    expect(plugin(onWindows, INSTALL_STEPS.verifyWindows)?.Output).toBe(
      "AGENTFIX_AGENT_STATUS=running AGENTFIX_AGENT_VERSION=1.8.1\n",
    );
    expect(plugin(onWindows, INSTALL_STEPS.skipIfCurrentWindows)?.Output).toBe(
      "AGENTFIX_BEFORE_STATUS=missing AGENTFIX_BEFORE_VERSION=\n",
    );
    // aws:runShellScript does not exist on Windows Server: the step is skipped before its precondition counts.
    expect(plugin(onWindows, INSTALL_STEPS.verifyLinux)).toMatchObject({
      StatusDetails: "Skipped",
      Output: `Step execution skipped due to unsupported plugin: aws:runShellScript. Step name: ${INSTALL_STEPS.verifyLinux}`,
    });
    expect(sandbox.world.counters.installsSent).toBe(before.installsSent + 2);
    expect(sandbox.world.counters.verifications).toBe(before.verifications + 2);
    expect(sandbox.world.counters.duplicateInstalls).toBe(before.duplicateInstalls);

    const requestedAfter = new Date(command.RequestedDateTime!.getTime() - 1000).toISOString();
    const filterSets: CommandFilter[][] = [
      [{ key: "DocumentName", value: NAME }],
      [{ key: "Status", value: "Success" }],
      [{ key: "InvokedAfter", value: requestedAfter }],
    ];
    for (const filters of filterSets) {
      const listed = await ssm.send(
        new ListCommandInvocationsCommand({ InstanceId: windows.id, Filters: filters }),
      );
      expect(listed.CommandInvocations?.map((item) => item.CommandId)).toEqual([command.CommandId]);
    }
    const failedOnly = await ssm.send(
      new ListCommandInvocationsCommand({
        InstanceId: windows.id,
        Filters: [{ key: "Status", value: "Failed" }],
      }),
    );
    expect(failedOnly.CommandInvocations).toEqual([]);
  });

  it("answers GetCommandInvocation of a multi-step document only for a named step", async () => {
    const instance = running({ agent: agent1_8_1 });
    const sent = await ssm.send(
      new SendCommandCommand({
        DocumentName: NAME,
        InstanceIds: [instance.id],
        // A newer version is expected and the running agent may not be restarted: the guard ends it.
        Parameters: {
          packageName: ["AWSCodeDeployAgent"],
          version: [""],
          expectedVersion: ["1.9.0"],
          allowRestart: ["no"],
        },
      }),
    );
    const commandId = sent.Command!.CommandId!;
    const invocation = (await finished(commandId)).get(instance.id);
    expect(invocation?.Status).toBe("Failed");
    await expectAwsError(
      ssm.send(new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instance.id })),
      "InvalidPluginName",
      400,
    );
    await expectAwsError(
      ssm.send(
        new GetCommandInvocationCommand({
          CommandId: commandId,
          InstanceId: instance.id,
          PluginName: "guardMacOS",
        }),
      ),
      "InvalidPluginName",
      400,
    );
    const check = await ssm.send(
      new GetCommandInvocationCommand({
        CommandId: commandId,
        InstanceId: instance.id,
        PluginName: "deploymentGuardLinux",
      }),
    );
    expect(check).toMatchObject({
      PluginName: "deploymentGuardLinux",
      Status: "Failed",
      StatusDetails: "Failed",
      ResponseCode: 1,
      // The guard ends the document (onFailure: exit), and SSM Agent says so on both streams.
      StandardOutputContent: `AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=1.8.1\n\n${ON_FAILURE_NOTE}`,
      StandardErrorContent: `failed to run commands: exit status 1\n${ON_FAILURE_NOTE}`,
    });
    expect(check.ExecutionEndDateTime).not.toBe("");
    const skipped = await ssm.send(
      new GetCommandInvocationCommand({
        CommandId: commandId,
        InstanceId: instance.id,
        PluginName: "deploymentGuardWindows",
      }),
    );
    expect(skipped).toMatchObject({ Status: "Success", StatusDetails: "Skipped", StandardOutputContent: "" });
  });

  it("holds the install back while a CodeDeploy lifecycle event runs on the instance", async () => {
    const { world } = sandbox;
    const instance = running({ agent: agent1_6_0 }, "api");
    world.codeDeploy.createApplication("shop");
    world.codeDeploy.createDeploymentGroup({
      applicationName: "shop",
      name: "api-dg",
      autoScalingGroups: ["api"],
      lastSuccessfulRevision: REVISION,
    });
    const deployment = world.codeDeploy.createDeployment({
      applicationName: "shop",
      deploymentGroupName: "api-dg",
      revision: REVISION,
    });
    const downloading = () => deployment.targets[0]!.lifecycleEvents[1]!;
    await sandbox.waitFor(() => downloading().status === "InProgress", {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    expect(instance.agent.ongoingDeployment?.deploymentId).toBe(deployment.id);

    const installsBefore = world.counters.installsSent;
    const command = await install([instance], {
      packageName: ["AWSCodeDeployAgent"],
      version: ["1.8.1"],
      expectedVersion: ["1.8"],
    });
    const invocation = (await finished(command.CommandId!)).get(instance.id);
    expect(invocation).toMatchObject({ Status: "Failed", StatusDetails: "Failed" });
    const guard = plugin(invocation, INSTALL_STEPS.guardLinux)!;
    expect(guard).toMatchObject({ Status: "Failed", ResponseCode: 1 });
    expect(guard.Output).toContain(`AGENTFIX_DEPLOYMENT_IN_PROGRESS=${deployment.id}`);
    expect(plugin(invocation, INSTALL_STEPS.install)).toMatchObject({ StatusDetails: "Skipped" });
    expect(plugin(invocation, INSTALL_STEPS.install)?.Output).toMatch(PRIOR_EXIT);
    expect(plugin(invocation, INSTALL_STEPS.verifyLinux)).toMatchObject({ StatusDetails: "Skipped" });
    const guardStep = await ssm.send(
      new GetCommandInvocationCommand({
        CommandId: command.CommandId!,
        InstanceId: instance.id,
        PluginName: INSTALL_STEPS.guardLinux,
      }),
    );
    expect(guardStep.StandardErrorContent).toBe(`failed to run commands: exit status 1\n${ON_FAILURE_NOTE}`);
    // The agent was left alone, and the deployment goes on.
    expect(instance.agent).toMatchObject(agent1_6_0);
    expect(world.counters.installsSent).toBe(installsBefore);
    expect(downloading().status).toBe("InProgress");
    await sandbox.waitFor(() => deployment.status === "Succeeded", { timeoutSeconds: 1800, pollSeconds: 5 });
    expect(downloading().status).toBe("Succeeded");
    // Each event's file is gone once the event ended.
    expect(instance.agent.ongoingDeployment).toBeUndefined();
  });

  it("verifies after an install that fails, and fails with what the verification found", async () => {
    const instance = running({ agent: noAgent });
    instance.faults.installFailureProbability = 1;
    const command = await install([instance], {
      packageName: ["AWSCodeDeployAgent"],
      version: [""],
      expectedVersion: [""],
    });
    const invocation = (await finished(command.CommandId!)).get(instance.id);
    expect(invocation?.Status).toBe("Failed");
    // "latest" is never current: the skip step lets the install go ahead.
    expect(plugin(invocation, INSTALL_STEPS.skipIfCurrentLinux)).toMatchObject({
      Status: "Success",
      ResponseCode: 0,
    });
    expect(plugin(invocation, INSTALL_STEPS.install)).toMatchObject({ Status: "Failed", ResponseCode: 1 });
    expect(plugin(invocation, INSTALL_STEPS.install)?.Output).toContain("Failed to install package");
    // The install step ends nothing: the verification runs and says what is there (no agent).
    expect(plugin(invocation, INSTALL_STEPS.verifyLinux)).toMatchObject({ Status: "Failed" });
    expect(plugin(invocation, INSTALL_STEPS.verifyLinux)?.Output).toContain(
      "AGENTFIX_AGENT_STATUS=missing AGENTFIX_AGENT_VERSION=",
    );
    expect(instance.agent.package).toBeNull();
  });

  it("fails the verification after an install that reports Success without a running agent", async () => {
    const instance = running({ agent: noAgent });
    instance.faults.installSucceedsWithoutAgentProbability = 1;
    const verificationsBefore = sandbox.world.counters.verifications;
    const command = await install([instance], {
      packageName: ["AWSCodeDeployAgentV2"],
      version: [""],
      expectedVersion: ["2"],
    });
    const invocation = (await finished(command.CommandId!)).get(instance.id);
    expect(invocation?.Status).toBe("Failed");
    expect(plugin(invocation, INSTALL_STEPS.install)).toMatchObject({ Status: "Success" });
    expect(plugin(invocation, INSTALL_STEPS.install)?.Output).toContain(
      "Successfully installed AWSCodeDeployAgentV2 2.1.0",
    );
    expect(plugin(invocation, INSTALL_STEPS.verifyLinux)).toMatchObject({
      Status: "Failed",
      ResponseCode: 1,
      Output:
        "AGENTFIX_AGENT_STATUS=stopped AGENTFIX_AGENT_VERSION=2.1.0\n\n----------ERROR-------\nfailed to run commands: exit status 1",
    });
    expect(instance.agent).toMatchObject({
      package: "AWSCodeDeployAgentV2",
      version: "2.1.0",
      running: false,
    });
    expect(instance.milestones.verified).toBeUndefined();
    expect(sandbox.world.counters.verifications).toBe(verificationsBefore + 1);
  });
  it("fails the install step of a second document sent while the first installs, and counts the duplicate", async () => {
    const instance = running({ agent: noAgent });
    const before = { ...sandbox.world.counters };
    const latest = { packageName: ["AWSCodeDeployAgent"], version: [""], expectedVersion: [""] };
    const first = await install([instance], latest);
    const second = await install([instance], latest);
    const [firstRun, secondRun] = [
      (await finished(first.CommandId!)).get(instance.id),
      (await finished(second.CommandId!)).get(instance.id),
    ];
    expect(firstRun?.Status).toBe("Success");
    expect(secondRun?.Status).toBe("Failed");
    expect(plugin(secondRun, INSTALL_STEPS.install)?.Output).toContain(
      'Package "AWSCodeDeployAgent" is already in the process of action "Install"',
    );
    expect(sandbox.world.counters.installsSent).toBe(before.installsSent + 2);
    expect(sandbox.world.counters.duplicateInstalls).toBe(before.duplicateInstalls + 1);
  });
});
