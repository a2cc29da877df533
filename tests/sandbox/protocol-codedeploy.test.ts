import {
  BatchGetDeploymentInstancesCommand,
  BatchGetDeploymentTargetsCommand,
  CreateDeploymentCommand,
  GetDeploymentCommand,
  GetDeploymentGroupCommand,
  ListApplicationsCommand,
  ListDeploymentGroupsCommand,
  ListDeploymentInstancesCommand,
  ListDeploymentsCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODEDEPLOY_HOOK_PREFIX } from "../../functions/core/contract.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { expectAwsError, REVISION, sdkClients, testSandbox } from "./helpers.js";

describe("CodeDeploy over the wire", () => {
  let sandbox: Sandbox;
  let codeDeploy: ReturnType<typeof sdkClients>["codeDeploy"];
  let deploymentId: string;

  beforeAll(async () => {
    sandbox = await testSandbox({ seed: "codedeploy" });
    codeDeploy = sdkClients(sandbox.endpoint).codeDeploy;
    const { world } = sandbox;
    world.autoScaling.createGroup({ name: "api", image: { imageId: "ami-1" } });
    world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.7.1", running: true },
    });
    world.addRunningInstance("api", {
      agent: { package: "AWSCodeDeployAgent", version: "1.8.1", running: true },
    });
    world.codeDeploy.createApplication("shop");
    world.codeDeploy.createDeploymentGroup({
      applicationName: "shop",
      name: "api-dg",
      autoScalingGroups: ["api"],
      deploymentConfigName: "CodeDeployDefault.AllAtOnce",
      lastSuccessfulRevision: REVISION,
    });
  });
  afterAll(() => sandbox.close());

  it("creates a deployment that fails ScriptFailed on ApplicationStart where the agent is older than the fix", async () => {
    const created = await codeDeploy.send(
      new CreateDeploymentCommand({
        applicationName: "shop",
        deploymentGroupName: "api-dg",
        revision: REVISION,
        description: "release 1.4.2",
      }),
    );
    deploymentId = created.deploymentId!;
    expect(deploymentId).toMatch(/^d-[A-Z0-9]{9}$/);
    await expectAwsError(
      codeDeploy.send(
        new CreateDeploymentCommand({
          applicationName: "shop",
          deploymentGroupName: "api-dg",
          revision: REVISION,
        }),
      ),
      "DeploymentLimitExceededException",
      400,
      `The Deployment Group 'api-dg' already has an active Deployment '${deploymentId}'`,
    );
    await sandbox.waitFor(() => sandbox.world.codeDeploy.deployment(deploymentId).status === "Failed", {
      timeoutSeconds: 600,
      pollSeconds: 1,
    });
    const { deploymentInfo } = await codeDeploy.send(new GetDeploymentCommand({ deploymentId }));
    expect(deploymentInfo).toMatchObject({
      status: "Failed",
      creator: "user",
      description: "release 1.4.2",
      errorInformation: { code: "HEALTH_CONSTRAINTS" },
      revision: REVISION,
      fileExistsBehavior: "DISALLOW",
      deploymentOverview: { Succeeded: 1, Failed: 1 },
      computePlatform: "Server",
    });
    expect(deploymentInfo?.createTime).toBeInstanceOf(Date);
    expect(deploymentInfo?.completeTime).toBeInstanceOf(Date);
  });

  it("lists and describes the failed targets with their lifecycle events", async () => {
    const failed = await codeDeploy.send(
      new ListDeploymentTargetsCommand({ deploymentId, targetFilters: { TargetStatus: ["Failed"] } }),
    );
    expect(failed.targetIds).toHaveLength(1);
    const { deploymentTargets } = await codeDeploy.send(
      new BatchGetDeploymentTargetsCommand({ deploymentId, targetIds: failed.targetIds }),
    );
    const target = deploymentTargets![0]!.instanceTarget!;
    expect(target.status).toBe("Failed");
    expect(sandbox.world.instance(target.targetId!).agent.version).toBe("1.7.1");
    const start = target.lifecycleEvents!.find((event) => event.lifecycleEventName === "ApplicationStart")!;
    expect(start).toMatchObject({
      status: "Failed",
      diagnostics: { errorCode: "ScriptFailed", scriptName: "scripts/start_tomcat.sh" },
    });
    expect(
      target.lifecycleEvents!.find((event) => event.lifecycleEventName === "ValidateService")!.status,
    ).toBe("Skipped");
    expect(target.lifecycleEvents!.find((event) => event.lifecycleEventName === "Install")!.status).toBe(
      "Succeeded",
    );
    const instances = await codeDeploy.send(
      new ListDeploymentInstancesCommand({ deploymentId, instanceStatusFilter: ["Failed"] }),
    );
    expect(instances.instancesList).toEqual(failed.targetIds);
    const summary = await codeDeploy.send(
      new BatchGetDeploymentInstancesCommand({ deploymentId, instanceIds: failed.targetIds }),
    );
    expect(summary.instancesSummary![0]).toMatchObject({
      status: "Failed",
      instanceId: failed.targetIds![0],
    });
  });

  it("validates batch sizes and ids", async () => {
    const many = Array.from({ length: 26 }, (_, index) => `i-${String(index).padStart(17, "0")}`);
    await expectAwsError(
      codeDeploy.send(new BatchGetDeploymentTargetsCommand({ deploymentId, targetIds: many })),
      "DeploymentTargetListSizeExceededException",
      400,
    );
    await expectAwsError(
      codeDeploy.send(new BatchGetDeploymentInstancesCommand({ deploymentId, instanceIds: many })),
      "BatchLimitExceededException",
      400,
    );
    await expectAwsError(
      codeDeploy.send(new GetDeploymentCommand({ deploymentId: "d-AAAAAAAAA" })),
      "DeploymentDoesNotExistException",
      400,
    );
    await expectAwsError(
      codeDeploy.send(new GetDeploymentCommand({ deploymentId: "nope" })),
      "InvalidDeploymentIdException",
      400,
    );
    await expectAwsError(
      codeDeploy.send(
        new CreateDeploymentCommand({
          applicationName: "shop",
          deploymentGroupName: "missing",
          revision: REVISION,
        }),
      ),
      "DeploymentGroupDoesNotExistException",
      400,
    );
  });

  it("lists deployments newest first, filtered by status and creation time", async () => {
    const all = await codeDeploy.send(
      new ListDeploymentsCommand({ applicationName: "shop", deploymentGroupName: "api-dg" }),
    );
    expect(all.deployments).toHaveLength(2);
    expect(all.deployments![0]).toBe(deploymentId);
    const failed = await codeDeploy.send(
      new ListDeploymentsCommand({
        applicationName: "shop",
        deploymentGroupName: "api-dg",
        includeOnlyStatuses: ["Failed"],
        createTimeRange: { start: new Date(sandbox.world.now() - 3_600_000) },
      }),
    );
    expect(failed.deployments).toEqual([deploymentId]);
    await expectAwsError(
      codeDeploy.send(new ListDeploymentsCommand({ deploymentGroupName: "api-dg" })),
      "ApplicationNameRequiredException",
      400,
    );
  });

  it("describes applications and deployment groups with the managed launch hook", async () => {
    expect((await codeDeploy.send(new ListApplicationsCommand({}))).applications).toEqual(["shop"]);
    expect(
      (await codeDeploy.send(new ListDeploymentGroupsCommand({ applicationName: "shop" }))).deploymentGroups,
    ).toEqual(["api-dg"]);
    const { deploymentGroupInfo } = await codeDeploy.send(
      new GetDeploymentGroupCommand({ applicationName: "shop", deploymentGroupName: "api-dg" }),
    );
    expect(deploymentGroupInfo).toMatchObject({
      autoScalingGroups: [
        { name: "api", hook: "CodeDeploy-managed-automatic-launch-deployment-hook-api-dg" },
      ],
      lastAttemptedDeployment: { deploymentId, status: "Failed" },
      lastSuccessfulDeployment: { status: "Succeeded" },
    });
  });
});

describe("CodeDeploy's quota of concurrent deployments per account", () => {
  const LIMIT = 2;
  let sandbox: Sandbox;
  let codeDeploy: ReturnType<typeof sdkClients>["codeDeploy"];

  beforeAll(async () => {
    sandbox = await testSandbox({
      seed: "codedeploy-quota",
      world: { codeDeploy: { maxConcurrentDeployments: LIMIT, managedHookHeartbeatTimeout: 60 } },
    });
    codeDeploy = sdkClients(sandbox.endpoint).codeDeploy;
    const { world } = sandbox;
    world.codeDeploy.createApplication("shop");
    // No agent runs anywhere: each deployment waits for one, and stays active for minutes.
    for (const name of ["a", "b", "c", "scaled"]) {
      world.autoScaling.createGroup({ name, maxSize: 2, image: { imageId: "ami-1" } });
      if (name !== "scaled")
        world.addRunningInstance(name, { agent: { package: null, version: null, running: false } });
      world.codeDeploy.createDeploymentGroup({
        applicationName: "shop",
        name: `${name}-dg`,
        autoScalingGroups: [name],
        lastSuccessfulRevision: REVISION,
      });
    }
  });
  afterAll(() => sandbox.close());

  it("refuses CreateDeployment beyond the quota with DeploymentLimitExceededException, whatever the group", async () => {
    for (const group of ["a-dg", "b-dg"]) {
      await codeDeploy.send(
        new CreateDeploymentCommand({
          applicationName: "shop",
          deploymentGroupName: group,
          revision: REVISION,
        }),
      );
    }
    expect(sandbox.world.codeDeploy.active()).toHaveLength(LIMIT);
    await expectAwsError(
      codeDeploy.send(
        new CreateDeploymentCommand({
          applicationName: "shop",
          deploymentGroupName: "c-dg",
          revision: REVISION,
        }),
      ),
      "DeploymentLimitExceededException",
      400,
      "The number of allowed deployments was exceeded.",
    );
  });

  it("creates no launch deployment beyond the quota: the managed hook runs out and abandons the instance", async () => {
    const { world } = sandbox;
    world.autoScaling.setDesiredCapacity("scaled", 1);
    await sandbox.waitFor(() => world.trace.count("deployment.limit-exceeded") > 0, {
      timeoutSeconds: 60,
      pollSeconds: 1,
    });
    const [refused] = world.trace.entries.filter((entry) => entry.kind === "deployment.limit-exceeded");
    const action = world.autoScaling
      .actionsOf(refused!.instanceId!)
      .find((candidate) => candidate.hookName.startsWith(CODEDEPLOY_HOOK_PREFIX));
    await sandbox.waitFor(() => action?.completed !== undefined, { timeoutSeconds: 120, pollSeconds: 1 });
    expect(action?.completed).toMatchObject({ result: "ABANDON", by: "timeout" });
    expect(
      [...world.codeDeploy.deployments.values()].filter(
        (deployment) =>
          deployment.creator === "autoscaling" && deployment.deploymentGroupName === "scaled-dg",
      ),
    ).toEqual([]);
  });
});
