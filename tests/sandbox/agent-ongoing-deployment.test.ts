import { afterEach, describe, expect, it } from "vitest";
import { installDocumentContent } from "../../functions/core/agent/documents.js";
import { INSTALL_STEPS, installDocumentName } from "../../functions/core/contract.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { AGENT_RESTART_MESSAGE } from "../../sandbox/world/codedeploy/diagnostics.js";
import type { Deployment } from "../../sandbox/world/codedeploy/records.js";
import type { Instance } from "../../sandbox/world/instances.js";
import { REVISION, testSandbox } from "./helpers.js";

const DISTRIBUTOR_DOCUMENT = installDocumentName("test");
const GUARDED_INSTALL = { packageName: ["AWSCodeDeployAgent"], version: ["1.8.1"], expectedVersion: ["1.8"] };

describe("the CodeDeploy agent's ongoing-deployment file", () => {
  let sandbox: Sandbox;
  afterEach(() => sandbox.close());

  async function deployingInstance(seed: string): Promise<{ instance: Instance; deployment: Deployment }> {
    sandbox = await testSandbox({ seed, world: { codeDeploy: { eventSeconds: { DownloadBundle: 120 } } } });
    const { world } = sandbox;
    world.ssm.createDocument({ name: DISTRIBUTOR_DOCUMENT, content: installDocumentContent("test") });
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instance = world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.6.0", running: true },
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
    return { instance, deployment };
  }

  /** Sends the service's install document and waits for its end; returns its deployment guard step. */
  async function guardedInstall(instance: Instance) {
    const { world } = sandbox;
    const command = world.ssm.sendCommand({
      DocumentName: DISTRIBUTOR_DOCUMENT,
      InstanceIds: [instance.id],
      Parameters: GUARDED_INSTALL,
    });
    const invocation = command.invocations[0]!;
    await sandbox.waitFor(() => world.ssm.isTerminal(invocation.status), {
      timeoutSeconds: 300,
      pollSeconds: 1,
    });
    return { invocation, guard: invocation.steps!.find((step) => step.name === INSTALL_STEPS.guardLinux)! };
  }

  it("fails the event an install restarts the agent in, and is gone once the new agent starts", async () => {
    const { instance, deployment } = await deployingInstance("ongoing-restart");
    const { world } = sandbox;
    const downloading = deployment.targets[0]!.lifecycleEvents[1]!;
    await sandbox.waitFor(() => downloading.status === "InProgress", { timeoutSeconds: 120, pollSeconds: 1 });
    expect(instance.agent.ongoingDeployment).toMatchObject({ deploymentId: deployment.id });
    const install = world.ssm.sendCommand({
      DocumentName: "AWS-ConfigureAWSPackage",
      InstanceIds: [instance.id],
      Parameters: { action: ["Install"], name: ["AWSCodeDeployAgent"], version: ["1.8.1"] },
    });
    await sandbox.waitFor(() => downloading.status === "Failed", { timeoutSeconds: 120, pollSeconds: 1 });
    expect(downloading.diagnostics).toMatchObject({
      errorCode: "UnknownError",
      message: AGENT_RESTART_MESSAGE,
    });
    // The uninstall left the deployment root alone: only an agent that starts cleans it up.
    expect(instance.agent).toMatchObject({
      package: null,
      ongoingDeployment: { deploymentId: deployment.id },
    });
    await sandbox.waitFor(() => install.invocations[0]!.status === "Success", {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    expect(instance.agent).toMatchObject({ version: "1.8.1", running: true });
    expect(instance.agent.ongoingDeployment).toBeUndefined();
  });

  it("leaves its file behind when the agent dies mid-event, and the guard lets the install replace that agent", async () => {
    const { instance, deployment } = await deployingInstance("ongoing-crash");
    instance.faults.agentCrashesOnLifecycleEvent = true;
    await sandbox.waitFor(() => deployment.status === "Failed", { timeoutSeconds: 900, pollSeconds: 5 });
    expect(instance.agent).toMatchObject({
      running: false,
      ongoingDeployment: { deploymentId: deployment.id },
    });

    // No event can run on a dead agent: the guard holds back only while the agent runs.
    instance.faults.agentCrashesOnLifecycleEvent = false;
    const replaced = await guardedInstall(instance);
    expect(replaced.invocation.status).toBe("Success");
    expect(replaced.guard.output).toBe(
      "AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=none\n",
    );
    expect(instance.agent).toMatchObject({ version: "1.8.1", running: true });
    expect(instance.agent.ongoingDeployment).toBeUndefined();
  });
});
