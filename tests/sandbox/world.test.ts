import { afterEach, describe, expect, it } from "vitest";
import type { Sandbox } from "../../sandbox/sandbox.js";
import {
  AGENT_NOT_RECEIVING_MESSAGE,
  AGENT_RESTART_MESSAGE,
} from "../../sandbox/world/codedeploy/diagnostics.js";
import { evaluateCondition } from "../../sandbox/world/condition-expression.js";
import { World } from "../../sandbox/world/world.js";
import { pass, REVISION, testSandbox } from "./helpers.js";

const INSTALL = {
  action: ["Install"],
  installationType: ["Uninstall and reinstall"],
  name: ["AWSCodeDeployAgent"],
  version: [""],
};

/** Installs the agent on the instance with AWS-ConfigureAWSPackage and waits for the invocation's end. */
async function installAndWait(sandbox: Sandbox, instanceId: string) {
  const command = sandbox.world.ssm.sendCommand({
    DocumentName: "AWS-ConfigureAWSPackage",
    InstanceIds: [instanceId],
    Parameters: INSTALL,
  });
  await sandbox.waitFor(() => sandbox.world.ssm.isTerminal(command.invocations[0]!.status), {
    timeoutSeconds: 300,
    pollSeconds: 1,
  });
  return command.invocations[0]!;
}

describe("the fleet model", () => {
  let sandbox: Sandbox;
  afterEach(() => sandbox.close());

  it("publishes a new default version of a package at a given time: DescribeDocument and installs of latest follow it", async () => {
    sandbox = await testSandbox({ seed: "release-day" });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: null, version: null, running: false },
    });
    expect(world.ssm.describeDocument("AWSCodeDeployAgent").versionName).toBe("1.8.1");
    world.ssm.publishPackageVersion("AWSCodeDeployAgent", "1.8.2", { atSeconds: 60 });
    await pass(30);
    expect(world.ssm.describeDocument("AWSCodeDeployAgent").versionName).toBe("1.8.1");
    await pass(40);
    expect(world.ssm.describeDocument("AWSCodeDeployAgent")).toMatchObject({
      versionName: "1.8.2",
      documentVersion: "5",
    });
    expect(world.ssm.describeDocument("AWSCodeDeployAgent", { versionName: "1.8.1" }).versionName).toBe(
      "1.8.1",
    );
    await installAndWait(sandbox, instance.id);
    expect(instance.agent).toMatchObject({ version: "1.8.2", running: true });
  });

  it("fails every install with Distributor's error while Distributor is down, and installs again after", async () => {
    sandbox = await testSandbox({ seed: "outage" });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
    });
    world.ssm.distributorOutage({ forSeconds: 600 });
    const send = () => installAndWait(sandbox, instance.id);
    const during = await send();
    expect(during.status).toBe("Failed");
    expect(`${during.output}${during.errorOutput ?? ""}`).toMatch(/^Failed to retrieve manifest: /);
    // Nothing was uninstalled: the failure comes before Distributor touches the instance.
    expect(instance.agent).toMatchObject({ version: "1.7.1", running: true });
    await pass(600);
    expect((await send()).status).toBe("Success");
    expect(instance.agent).toMatchObject({ version: "1.8.1", running: true });
  });

  it("withdraws a package from the Region: DescribeDocument refuses it and installs fail with not found, until it is back", async () => {
    sandbox = await testSandbox({ seed: "withdrawn" });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: null, version: null, running: false },
    });
    world.ssm.withdrawPackage("AWSCodeDeployAgent", { forSeconds: 300 });
    expect(() => world.ssm.describeDocument("AWSCodeDeployAgent")).toThrow(/does not exist/);
    const install = await installAndWait(sandbox, instance.id);
    expect(install.status).toBe("Failed");
    expect(`${install.output}${install.errorOutput ?? ""}`).toMatch(/not found/);
    await pass(310);
    expect(world.ssm.describeDocument("AWSCodeDeployAgent").versionName).toBe("1.8.1");
  });

  it("keeps an instance in Pending:Wait until every launch hook continues", async () => {
    sandbox = await testSandbox({ seed: "hooks" });
    const { autoScaling } = sandbox.world;
    autoScaling.createGroup({ name: "web", image: { imageId: "ami-1" } });
    for (const hookName of ["ours", "theirs"]) {
      autoScaling.putLifecycleHook({
        groupName: "web",
        hookName,
        transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        heartbeatTimeout: 600,
      });
    }
    autoScaling.setDesiredCapacity("web", 1);
    await sandbox.waitFor(() => autoScaling.actions.length === 2, { timeoutSeconds: 60, pollSeconds: 1 });
    const instanceId = autoScaling.actions[0]!.instanceId;
    autoScaling.completeLifecycleAction(
      { groupName: "web", hookName: "ours", instanceId, result: "CONTINUE" },
      "api",
    );
    await pass(10);
    expect(sandbox.world.instance(instanceId).lifecycleState).toBe("Pending:Wait");
    autoScaling.completeLifecycleAction(
      { groupName: "web", hookName: "theirs", instanceId, result: "CONTINUE" },
      "api",
    );
    await sandbox.waitFor(() => sandbox.world.instance(instanceId).lifecycleState === "InService", {
      timeoutSeconds: 30,
      pollSeconds: 1,
    });
    expect(sandbox.world.instance(instanceId).milestones.inService).toBeDefined();
  });

  it("applies the default result when the heartbeat runs out, and replaces an abandoned instance", async () => {
    sandbox = await testSandbox({ seed: "timeout" });
    const { autoScaling } = sandbox.world;
    autoScaling.createGroup({ name: "web", image: { imageId: "ami-1" } });
    autoScaling.putLifecycleHook({
      groupName: "web",
      hookName: "ours",
      transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
      heartbeatTimeout: 300,
      defaultResult: "ABANDON",
    });
    autoScaling.setDesiredCapacity("web", 1);
    await sandbox.waitFor(() => autoScaling.actions.length === 1, { timeoutSeconds: 60, pollSeconds: 1 });
    const first = autoScaling.actions[0]!;
    await pass(200);
    autoScaling.recordHeartbeat({ groupName: "web", hookName: "ours", token: first.token });
    await pass(200);
    // 400 s after the start, past the 300 s heartbeat timeout, but only 200 s after the heartbeat: still waiting.
    expect(first.completed).toBeUndefined();
    await sandbox.waitFor(() => autoScaling.actions.length === 2, { timeoutSeconds: 600, pollSeconds: 5 });
    expect(first.completed).toMatchObject({ result: "ABANDON", by: "timeout" });
    expect(
      sandbox.world.instance(first.instanceId).terminated ||
        sandbox.world.instance(first.instanceId).lifecycleState === "Terminating",
    ).toBe(true);
    const activity = autoScaling.activities.find((candidate) => candidate.instanceId === first.instanceId)!;
    expect(activity.StatusCode).toBe("Failed");
    expect(activity.StatusMessage).toBe(
      `Instance failed to complete user's Lifecycle Action: Lifecycle Action with token ${first.token} was abandoned: Heartbeat Timeout`,
    );
  });

  it("runs CodeDeploy's launch hook: the last successful revision is deployed, and a failure abandons the instance", async () => {
    sandbox = await testSandbox({ seed: "launch-deployment" });
    const { world } = sandbox;
    world.autoScaling.createGroup({
      name: "web",
      image: { imageId: "ami-old", bakedAgent: { version: "1.7.1", running: true } },
    });
    world.codeDeploy.createApplication("shop");
    world.codeDeploy.createDeploymentGroup({
      applicationName: "shop",
      name: "web-dg",
      autoScalingGroups: ["web"],
      lastSuccessfulRevision: REVISION,
    });
    world.autoScaling.setDesiredCapacity("web", 1);
    await sandbox.waitFor(
      () => [...world.instances.values()].some((instance) => instance.milestones.abandoned !== undefined),
      {
        timeoutSeconds: 900,
        pollSeconds: 5,
      },
    );
    const launch = [...world.codeDeploy.deployments.values()].find(
      (deployment) => deployment.creator === "autoscaling",
    )!;
    expect(launch.revision).toEqual(REVISION);
    expect(launch.status).toBe("Failed");
    const start = launch.targets[0]!.lifecycleEvents.find(
      (event) => event.lifecycleEventName === "ApplicationStart",
    )!;
    expect(start.diagnostics?.errorCode).toBe("ScriptFailed");
    const hook = world.autoScaling.actions.find(
      (action) => action.hookName === "CodeDeploy-managed-automatic-launch-deployment-hook-web-dg",
    )!;
    expect(hook.completed).toMatchObject({ result: "ABANDON", by: "codedeploy" });
    await sandbox.waitFor(() => world.instances.size === 2, { timeoutSeconds: 300, pollSeconds: 5 });
  });

  it("fails a lifecycle event no agent picks up within CodeDeploy's wait (5 minutes by default)", async () => {
    sandbox = await testSandbox({ seed: "agent-wait" });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: null, version: null, running: false },
    });
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
    await pass(200);
    expect(deployment.status).toBe("InProgress");
    await sandbox.waitFor(() => deployment.status === "Failed", { timeoutSeconds: 300, pollSeconds: 5 });
    const first = deployment.targets[0]!.lifecycleEvents[0]!;
    expect(first).toMatchObject({
      lifecycleEventName: "ApplicationStop",
      status: "Failed",
      diagnostics: { errorCode: "UnknownError", message: AGENT_NOT_RECEIVING_MESSAGE },
    });
    expect(deployment.targets[0]!.lifecycleEvents.slice(1).every((event) => event.status === "Skipped")).toBe(
      true,
    );
    expect(instance.lifecycleState).toBe("InService");
  });

  it("fails the lifecycle event in progress when an install restarts the agent", async () => {
    sandbox = await testSandbox({
      seed: "restart",
      world: { codeDeploy: { eventSeconds: { DownloadBundle: 60 } } },
    });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.8.1", running: true },
    });
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
    await sandbox.waitFor(() => deployment.targets[0]!.lifecycleEvents[1]!.status === "InProgress", {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    world.ssm.sendCommand({
      DocumentName: "AWS-ConfigureAWSPackage",
      InstanceIds: [instance.id],
      Parameters: INSTALL,
    });
    await sandbox.waitFor(() => deployment.status === "Failed", { timeoutSeconds: 120, pollSeconds: 1 });
    expect(deployment.targets[0]!.lifecycleEvents[1]).toMatchObject({
      lifecycleEventName: "DownloadBundle",
      status: "Failed",
      diagnostics: { errorCode: "UnknownError", message: AGENT_RESTART_MESSAGE },
    });
  });

  it("can report Success for an install that leaves the agent stopped, and the verification tells", async () => {
    sandbox = await testSandbox({
      seed: "silent",
      world: { ssm: { installSucceedsWithoutAgentProbability: 1 } },
    });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: null, version: null, running: false },
    });
    const install = world.ssm.sendCommand({
      DocumentName: "AWS-ConfigureAWSPackage",
      InstanceIds: [instance.id],
      Parameters: INSTALL,
    });
    await sandbox.waitFor(() => install.invocations[0]!.status === "Success", {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    expect(instance.agent).toMatchObject({ version: "1.8.1", running: false });
    const verify = world.ssm.sendCommand({
      DocumentName: "AWS-RunShellScript",
      InstanceIds: [instance.id],
      Parameters: { commands: ["# agentfix verify-agent", "true"] },
    });
    await sandbox.waitFor(() => world.ssm.isTerminal(verify.invocations[0]!.status), {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    expect(verify.invocations[0]).toMatchObject({
      status: "Failed",
      responseCode: 1,
      output: "AGENTFIX_AGENT_STATUS=stopped AGENTFIX_AGENT_VERSION=1.8.1\n",
    });
  });

  it("runs a State Manager association's install when an instance registers", async () => {
    sandbox = await testSandbox({ seed: "association" });
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "web", image: { imageId: "ami-1", registrationDelaySeconds: 10 } });
    world.associations.create({
      id: "agent-association",
      groupNames: ["web"],
      packageName: "AWSCodeDeployAgent",
      applyDelaySeconds: 5,
    });
    world.autoScaling.setDesiredCapacity("web", 2);
    await sandbox.waitFor(
      () => [...world.instances.values()].filter((instance) => instance.agent.running).length === 2,
      { timeoutSeconds: 300, pollSeconds: 5 },
    );
    expect(world.associations.runs).toHaveLength(2);
    // Association runs are not Run Command invocations a ListCommandInvocations call would show.
    expect(world.ssm.invocations.every((invocation) => invocation.source === "association")).toBe(true);
  });

  it("draws the same fleet from the same seed", () => {
    const draw = (seed: string) => {
      const world = new World({ seed });
      world.autoScaling.createGroup({ name: "web", image: { imageId: "ami-1", windowsShare: 0.5 } });
      world.autoScaling.setDesiredCapacity("web", 5);
      const fleet = [...world.instances.values()].map(
        (instance) =>
          `${instance.id}/${instance.platform}/${instance.ssm.registersAt! - instance.launchedAt}`,
      );
      world.stop();
      return fleet;
    };
    expect(draw("a")).toEqual(draw("a"));
    expect(draw("a")).not.toEqual(draw("b"));
  });
});

describe("DynamoDB condition expressions", () => {
  const item = { pk: { S: "agent#i-1" }, holder: { S: "a" }, expiresAt: { N: "1000" } };
  const values = (now: number, holder: string) => ({ ":now": { N: String(now) }, ":holder": { S: holder } });
  const LEASE = "attribute_not_exists(pk) OR expiresAt < :now OR holder = :holder";

  it("evaluates the lease condition on a missing, held, expired and own item", () => {
    expect(evaluateCondition(LEASE, undefined, {}, values(500, "b"))).toBe(true);
    expect(evaluateCondition(LEASE, item, {}, values(500, "b"))).toBe(false);
    expect(evaluateCondition(LEASE, item, {}, values(1500, "b"))).toBe(true);
    expect(evaluateCondition(LEASE, item, {}, values(500, "a"))).toBe(true);
  });

  it("honours precedence, parentheses, NOT and name placeholders, and rejects what DynamoDB rejects", () => {
    expect(
      evaluateCondition(
        "NOT (#h = :h) AND attribute_exists(pk)",
        item,
        { "#h": "holder" },
        { ":h": { S: "b" } },
      ),
    ).toBe(true);
    expect(
      evaluateCondition(
        "holder = :a OR holder = :b AND expiresAt > :n",
        item,
        {},
        { ":a": { S: "a" }, ":b": { S: "x" }, ":n": { N: "5000" } },
      ),
    ).toBe(true);
    expect(() => evaluateCondition("holder = :missing", item, {}, {})).toThrow(
      /attribute value used in expression is not defined/,
    );
    expect(() =>
      evaluateCondition("holder = :a", item, {}, { ":a": { S: "a" }, ":unused": { S: "x" } }),
    ).toThrow(/unused in expressions/);
    expect(() => evaluateCondition("holder = = :a", item, {}, { ":a": { S: "a" } })).toThrow(/Syntax error/);
  });
});
