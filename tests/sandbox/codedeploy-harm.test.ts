import {
  CreateDeploymentCommand,
  GetDeploymentCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import { SendCommandCommand } from "@aws-sdk/client-ssm";
import { afterEach, describe, expect, it } from "vitest";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { sendCommandInGroups } from "../../sandbox/server/access.js";
import { expectAwsError, REVISION, sdkClients, testSandbox } from "./helpers.js";

/**
 * The sandbox's CodeDeploy counts the harm a remediation could do (world.codeDeploy.harm), models
 * blue/green deployment groups and a rollback created some time after the failure, and the server
 * refuses SendCommand outside the groups a caller's role covers. The scenarios assert the counters
 * stay at 0; these tests show that they count.
 */
const OLD_AGENT = { package: "AWSCodeDeployAgent" as const, version: "1.7.1", running: true };
const RELEASE = { ...REVISION, s3Location: { ...REVISION.s3Location, key: "shop/shop-1.5.0.zip" } };

describe("harm counted by the sandbox's CodeDeploy", () => {
  let sandbox: Sandbox;
  afterEach(() => sandbox.close());

  it("counts a deployment requested over the API in a blue/green group, not one the world itself creates", async () => {
    sandbox = await testSandbox({ seed: "harm-blue-green" });
    const { world } = sandbox;
    const { codeDeploy } = sdkClients(sandbox.endpoint);
    for (const name of ["blue", "green"])
      world.autoScaling.createGroup({ name, image: { imageId: "ami-1" } });
    world.addRunningInstance("green", { agent: { ...OLD_AGENT } });
    world.codeDeploy.createApplication("shop");
    world.codeDeploy.createDeploymentGroup({
      applicationName: "shop",
      name: "bg-dg",
      autoScalingGroups: ["blue"],
      lastSuccessfulRevision: REVISION,
      deploymentStyle: { deploymentType: "BLUE_GREEN", deploymentOption: "WITH_TRAFFIC_CONTROL" },
    });
    const release = world.codeDeploy.createDeployment({
      applicationName: "shop",
      deploymentGroupName: "bg-dg",
      revision: RELEASE,
      targetInstances: { autoScalingGroups: ["green"] },
    });
    await sandbox.waitFor(() => release.status === "Failed", { timeoutSeconds: 600, pollSeconds: 5 });
    expect(world.codeDeploy.harm.total).toBe(0);

    const { deploymentInfo } = await codeDeploy.send(new GetDeploymentCommand({ deploymentId: release.id }));
    expect(deploymentInfo?.deploymentStyle).toEqual({
      deploymentType: "BLUE_GREEN",
      deploymentOption: "WITH_TRAFFIC_CONTROL",
    });
    const green = await codeDeploy.send(
      new ListDeploymentTargetsCommand({
        deploymentId: release.id,
        targetFilters: { ServerInstanceLabel: ["Green"] },
      }),
    );
    expect(green.targetIds).toHaveLength(1);

    await codeDeploy.send(
      new CreateDeploymentCommand({
        applicationName: "shop",
        deploymentGroupName: "bg-dg",
        revision: RELEASE,
      }),
    );
    expect(world.codeDeploy.harm.blueGreenRedeploys).toBe(1);
  });

  it("counts a redeploy made before the automatic rollback appears, and an agent restarted under the rollback", async () => {
    sandbox = await testSandbox({
      seed: "harm-rollback",
      world: { codeDeploy: { rollbackDelaySeconds: { min: 60, max: 60 } } },
    });
    const { world } = sandbox;
    const { codeDeploy } = sdkClients(sandbox.endpoint);
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    const instances = [1, 2].map(() => world.addRunningInstance("api", { agent: { ...OLD_AGENT } }));
    world.codeDeploy.createApplication("shop");
    world.codeDeploy.createDeploymentGroup({
      applicationName: "shop",
      name: "api-dg",
      autoScalingGroups: ["api"],
      lastSuccessfulRevision: REVISION,
      autoRollbackConfiguration: { enabled: true, events: ["DEPLOYMENT_FAILURE"] },
    });
    const release = world.codeDeploy.createDeployment({
      applicationName: "shop",
      deploymentGroupName: "api-dg",
      revision: RELEASE,
    });
    await sandbox.waitFor(() => release.status === "Failed", { timeoutSeconds: 600, pollSeconds: 1 });
    expect(release.rollbackInfo).toBeUndefined();

    // While the rollback is due: the same revision again, over the API.
    const { deploymentId } = await codeDeploy.send(
      new CreateDeploymentCommand({
        applicationName: "shop",
        deploymentGroupName: "api-dg",
        revision: RELEASE,
      }),
    );
    expect(world.codeDeploy.harm.redeploysAgainstRollback).toBe(1);
    await sandbox.waitFor(() => world.codeDeploy.deployment(deploymentId).status === "Failed", {
      timeoutSeconds: 600,
      pollSeconds: 1,
    });

    // The rollback appears; an install restarts the agents while it still has them to deploy to.
    await sandbox.waitFor(() => release.rollbackInfo !== undefined, { timeoutSeconds: 120, pollSeconds: 1 });
    world.ssm.sendCommand({
      DocumentName: "AWS-ConfigureAWSPackage",
      InstanceIds: instances.map((instance) => instance.id),
      Parameters: { action: ["Install"], name: ["AWSCodeDeployAgent"], version: ["1.8.1"] },
    });
    await sandbox.waitFor(() => world.codeDeploy.harm.agentRestartsUnderDeployment > 0, {
      timeoutSeconds: 120,
      pollSeconds: 1,
    });
    expect(world.codeDeploy.harm.events.at(-1)).toMatchObject({
      kind: "agent-restart-under-deployment",
      deploymentId: release.rollbackInfo?.rollbackDeploymentId,
    });
  });

  it("refuses SendCommand to an instance outside the groups a caller's role covers, naming it", async () => {
    sandbox = await testSandbox({ seed: "harm-access" });
    const { world } = sandbox;
    const { ssm } = sdkClients(sandbox.endpoint);
    for (const name of ["api", "legacy"])
      world.autoScaling.createGroup({ name, image: { imageId: "ami-1" } });
    const inside = world.addRunningInstance("api", { agent: { ...OLD_AGENT } });
    const outside = world.addRunningInstance("legacy", { agent: { ...OLD_AGENT } });
    // This test's client calls as "external".
    sandbox.server.access.restrict("external", "SSM.SendCommand", sendCommandInGroups(["api"]));
    const send = (instanceIds: string[]) =>
      ssm.send(
        new SendCommandCommand({
          DocumentName: "AWS-ConfigureAWSPackage",
          InstanceIds: instanceIds,
          Parameters: { action: ["Install"], name: ["AWSCodeDeployAgent"] },
        }),
      );

    await expectAwsError(
      send([inside.id, outside.id]),
      "AccessDeniedException",
      400,
      new RegExp(`not authorized to perform: ssm:SendCommand on resource: .*instance/${outside.id}`),
    );
    expect((await send([inside.id])).Command?.CommandId).toBeDefined();
  });
});
