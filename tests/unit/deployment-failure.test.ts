import {
  BatchGetDeploymentInstancesCommand,
  BatchGetDeploymentTargetsCommand,
  CreateDeploymentCommand,
  DeploymentLimitExceededException,
  GetDeploymentCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import { ConditionalCheckFailedException, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SendCommandCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { dynamoLease } from "../../functions/core/common/lease.js";
import { DeploymentGuard } from "../../functions/core/failure/guard.js";
import { RedeployDeferredError } from "../../functions/core/failure/retry-queue.js";
import { DeploymentLeaseHeldError, type FailureReport } from "../../functions/core/failure/run.js";
import {
  APP,
  addFailure,
  addMetric,
  agentTarget,
  codeDeploy,
  dynamodb,
  event,
  failedDeployment,
  fakeCodeDeploy,
  fakeSsm,
  GROUP,
  LATEST_AGENT,
  MINUTE,
  metricNames,
  REVISION,
  run,
  scriptFailedTarget,
  ssm,
  useFailureHarness,
} from "./support/failure-fakes.js";

/**
 * The failure path end to end against stateful stand-ins for CodeDeploy and SSM (aws-sdk-client-mock):
 * the real agent engine runs, so upgrades are SendCommand / ListCommandInvocations round trips.
 */
useFailureHarness();

// --- behaviour -------------------------------------------------------------------------------

describe("deployment failure: redeploy decisions", () => {
  it("upgrades the agent and redeploys the same revision and options when a failed instance shows the agent signature", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-AGENT0001", [agentTarget("i-0aaa")]);

    const report = await run("d-AGENT0001");

    expect(report.decision).toBe("REDEPLOYED");
    expect(report.redeploymentId).toBe("d-REDEPLOY1");
    expect(report.failedTargets).toEqual([
      expect.objectContaining({
        instanceId: "i-0aaa",
        classification: "AGENT",
        lifecycleEvent: "ApplicationStop",
        errorCode: "UnknownError",
      }),
    ]);
    expect(report.upgraded).toEqual([{ instanceId: "i-0aaa", from: "1.7.1", to: LATEST_AGENT }]);
    expect(fakeSsm.installsOn("i-0aaa")).toBe(1);
    expect(fakeCodeDeploy.created).toHaveLength(1);
    expect(fakeCodeDeploy.created[0]).toEqual({
      applicationName: APP,
      deploymentGroupName: GROUP,
      revision: REVISION,
      deploymentConfigName: "CodeDeployDefault.OneAtATime",
      description: "Release 42 of the web tier [agentfix test redeploy of d-AGENT0001 attempt 1]",
      fileExistsBehavior: "OVERWRITE",
      ignoreApplicationStopFailures: true,
      autoRollbackConfiguration: { enabled: false, events: ["DEPLOYMENT_FAILURE"] },
      updateOutdatedInstancesOnly: false,
    });
    expect(report).toMatchObject({ originalDeploymentId: "d-AGENT0001", attempt: 1 });
  });

  it("redeploys a ScriptFailed failure when the upgrade changes an outdated agent", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    fakeSsm.add("i-0bbb", { version: "1.7.1" });
    addFailure("d-SCRIPT001", [scriptFailedTarget("i-0aaa"), scriptFailedTarget("i-0bbb")]);

    const report = await run("d-SCRIPT001");

    expect(report.decision).toBe("REDEPLOYED");
    expect(report.failedTargets.map((target) => target.classification)).toEqual([
      "APPLICATION",
      "APPLICATION",
    ]);
    expect(report.upgraded).toEqual([
      { instanceId: "i-0aaa", from: "1.7.1", to: LATEST_AGENT },
      { instanceId: "i-0bbb", from: "1.7.1", to: LATEST_AGENT },
    ]);
    expect(report.reason).toContain("the upgrade changed the agent on i-0aaa (1.7.1 -> 1.8.1)");
    expect(fakeCodeDeploy.created).toHaveLength(1);
    expect(metricNames()).toContain("AgentUpgraded");
    expect(addMetric).toHaveBeenCalledWith("AgentUpgraded", "Count", 2);
  });

  it("gives up on a ScriptFailed failure when the agent is already current", async () => {
    fakeSsm.add("i-0aaa", { version: LATEST_AGENT });
    addFailure("d-SCRIPT002", [scriptFailedTarget("i-0aaa")]);

    const report = await run("d-SCRIPT002");

    expect(report.decision).toBe("GAVE_UP");
    expect(report.reason).toContain("ScriptFailed in ApplicationStart on i-0aaa");
    expect(report.reason).toContain("a retry would only fail again");
    expect(report.upgraded).toEqual([{ instanceId: "i-0aaa", from: LATEST_AGENT, to: LATEST_AGENT }]);
    expect(fakeCodeDeploy.created).toHaveLength(0);
    expect(metricNames()).not.toContain("AgentUpgraded");
  });

  it("redeploys on a deployment-level AGENT_ISSUE", async () => {
    fakeSsm.add("i-0aaa", { version: LATEST_AGENT });
    addFailure("d-AGENTISS1", [scriptFailedTarget("i-0aaa")], {
      errorInformation: {
        code: "AGENT_ISSUE",
        message: "The deployment failed because of a problem with the CodeDeploy agent.",
      },
    });

    const report = await run("d-AGENTISS1");

    expect(report.decision).toBe("REDEPLOYED");
    expect(report.reason).toContain("AGENT_ISSUE");
  });

  it("treats a failed instance whose lifecycle events were all skipped as an agent problem", async () => {
    fakeSsm.add("i-0aaa", { version: "", running: false });
    addFailure("d-SKIPPED01", [
      {
        targetId: "i-0aaa",
        status: "Failed",
        lifecycleEvents: [event("ApplicationStop", "Skipped"), event("DownloadBundle", "Skipped")],
      },
    ]);

    const report = await run("d-SKIPPED01", { REDEPLOY_WHEN: "agent-signature" });

    expect(report.decision).toBe("REDEPLOYED");
    expect(report.failedTargets[0]?.classification).toBe("AGENT");
    expect(report.upgraded).toEqual([{ instanceId: "i-0aaa", from: "none", to: LATEST_AGENT }]);
  });

  it("gives up without touching the agent when REDEPLOY_WHEN is agent-signature and the application failed", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-SCRIPT003", [scriptFailedTarget("i-0aaa")]);

    const report = await run("d-SCRIPT003", { REDEPLOY_WHEN: "agent-signature" });

    expect(report.decision).toBe("GAVE_UP");
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("upgrades but never redeploys when REDEPLOY_WHEN is never", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-NEVER0001", [agentTarget("i-0aaa")]);

    const report = await run("d-NEVER0001", { REDEPLOY_WHEN: "never" });

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("REDEPLOY_WHEN is never");
    expect(report.upgraded).toHaveLength(1);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("carries a RESTART deployment over as RESTART, without a revision", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-RESTART01", [agentTarget("i-0aaa")], { deploymentMode: "RESTART", revision: undefined });

    const report = await run("d-RESTART01");

    expect(report.decision).toBe("REDEPLOYED");
    expect(fakeCodeDeploy.created[0]).toMatchObject({ deploymentMode: "RESTART" });
    expect(fakeCodeDeploy.created[0]).not.toHaveProperty("revision");
  });
});

describe("deployment failure: what it leaves alone", () => {
  it.each([
    ["it did not fail", { status: "Succeeded" as const }, "is Succeeded, not Failed"],
    ["it was stopped", { status: "Stopped" as const }, "is Stopped, not Failed"],
    ["it is a Lambda deployment", { computePlatform: "Lambda" as const }, "no CodeDeploy agent is involved"],
    [
      "Auto Scaling created it for a new instance",
      { creator: "autoscaling" as const },
      "the replacement gets a current agent from the launch path",
    ],
    [
      "it is a termination deployment",
      { creator: "autoscalingTermination" as const },
      "creator autoscalingTermination",
    ],
    [
      "it is an automatic update of outdated instances",
      { creator: "CodeDeployAutoUpdate" as const },
      "creator CodeDeployAutoUpdate",
    ],
    [
      "a rollback is already under way",
      { rollbackInfo: { rollbackDeploymentId: "d-ROLLBACK1", rollbackMessage: "rolled back" } },
      "Rollback d-ROLLBACK1 of d-SKIP00001 followed the failure: d-SKIP00001 is left to it",
    ],
    [
      "its group is out of scope",
      { deploymentGroupName: "api-dg" },
      "web-app/api-dg is not one of the deployment groups in scope",
    ],
  ])("skips a failure when %s", async (_why, overrides, reason) => {
    fakeSsm.add("i-0aaa");
    addFailure("d-SKIP00001", [agentTarget("i-0aaa")], overrides);

    const report = await run("d-SKIP00001", { TARGET_DEPLOYMENT_GROUPS: [`${APP}/${GROUP}`] });

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain(reason);
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith("RedeploySkipped", "Count", 1);
  });

  it("names the abandoned instance of a failed launch deployment", async () => {
    addFailure("d-LAUNCH001", [agentTarget("i-0new")], { creator: "autoscaling" });

    const report = await run("d-LAUNCH001");

    expect(report.reason).toContain("instance i-0new");
    expect(report.failedTargets.map((target) => target.instanceId)).toEqual(["i-0new"]);
  });

  it.each([
    "INVALID_REVISION",
    "REVISION_MISSING",
    "APPLICATION_MISSING",
    "DEPLOYMENT_GROUP_MISSING",
    "IAM_ROLE_MISSING",
    "IAM_ROLE_PERMISSIONS",
    "ALARM_ACTIVE",
    "MANUAL_STOP",
    "NO_INSTANCES",
    "UNABLE_TO_SEND_ASG",
  ])("skips a failure with error code %s, which an agent cannot cause", async (code) => {
    fakeSsm.add("i-0aaa");
    addFailure("d-CODE00001", [agentTarget("i-0aaa")], {
      errorInformation: { code: code as "ALARM_ACTIVE", message: "m" },
    });

    const report = await run("d-CODE00001");

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain(`failed with ${code}`);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("skips a failure that a newer user deployment replaced", async () => {
    fakeSsm.add("i-0aaa");
    addFailure("d-OLD000001", [agentTarget("i-0aaa")]);
    fakeCodeDeploy.add({
      info: {
        ...failedDeployment("d-NEWER0001"),
        status: "Succeeded",
        createTime: new Date(),
        description: "Release 43",
      },
      targets: [],
    });

    const report = await run("d-OLD000001");

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("d-NEWER0001 (creator user) was created after d-OLD000001");
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("skips rather than risk a second redeployment when too many deployments followed to read them all", async () => {
    fakeSsm.add("i-0aaa");
    addFailure("d-BUSYGRP01", [agentTarget("i-0aaa")]);
    for (let index = 0; index < 51; index += 1) {
      fakeCodeDeploy.add({
        info: {
          ...failedDeployment(`d-LAUNCH${String(index).padStart(3, "0")}`),
          status: "Succeeded",
          creator: "autoscaling",
          createTime: new Date(),
        },
        targets: [],
      });
    }

    const report = await run("d-BUSYGRP01");

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("51 deployments were created in the group after d-BUSYGRP01");
    expect(codeDeploy.commandCalls(GetDeploymentCommand)).toHaveLength(1 + 50);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("does not count launch deployments created since the failure as replacing it", async () => {
    fakeSsm.add("i-0aaa");
    addFailure("d-FAIL00001", [agentTarget("i-0aaa")]);
    fakeCodeDeploy.add({
      info: {
        ...failedDeployment("d-LAUNCH002"),
        status: "Succeeded",
        creator: "autoscaling",
        createTime: new Date(),
      },
      targets: [],
    });

    expect((await run("d-FAIL00001")).decision).toBe("REDEPLOYED");
  });
});

describe("deployment failure: never twice, never beyond the cap", () => {
  it("stops at MAX_REDEPLOYS counting through a chain of redeployments", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-CHAIN0001", [agentTarget("i-0aaa")]);

    const first = await run("d-CHAIN0001", { MAX_REDEPLOYS: 2 });
    expect(first).toMatchObject({ decision: "REDEPLOYED", redeploymentId: "d-REDEPLOY1", attempt: 1 });

    fakeCodeDeploy.fail("d-REDEPLOY1", [agentTarget("i-0aaa")]);
    const second = await run("d-REDEPLOY1", { MAX_REDEPLOYS: 2 });
    expect(second).toMatchObject({
      decision: "REDEPLOYED",
      redeploymentId: "d-REDEPLOY2",
      originalDeploymentId: "d-CHAIN0001",
      attempt: 2,
    });
    // The chain names the original failure, not the redeployment that failed, and keeps the text.
    expect(fakeCodeDeploy.created[1]?.description).toBe(
      "Release 42 of the web tier [agentfix test redeploy of d-CHAIN0001 attempt 2]",
    );

    fakeCodeDeploy.fail("d-REDEPLOY2", [agentTarget("i-0aaa")]);
    const third = await run("d-REDEPLOY2", { MAX_REDEPLOYS: 2 });
    expect(third).toMatchObject({ decision: "GAVE_UP", originalDeploymentId: "d-CHAIN0001", attempt: 3 });
    expect(third.reason).toContain("attempt cap is reached");
    expect(third.reason).toContain("redeployment 2 of d-CHAIN0001");
    expect(fakeCodeDeploy.created).toHaveLength(2);
    expect(addMetric).toHaveBeenCalledWith("RedeployGaveUp", "Count", 1);
  });

  it("gives up at once when MAX_REDEPLOYS is 0", async () => {
    fakeSsm.add("i-0aaa");
    addFailure("d-CAP000001", [agentTarget("i-0aaa")]);

    const report = await run("d-CAP000001", { MAX_REDEPLOYS: 0 });

    expect(report.decision).toBe("GAVE_UP");
    expect(report.failedTargets).toHaveLength(1);
    expect(fakeSsm.installs).toBe(0);
  });

  it("creates no second redeployment when the same failure arrives again", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUP000001", [agentTarget("i-0aaa")]);

    const first = await run("d-DUP000001");
    const second = await run("d-DUP000001");

    expect(first.decision).toBe("REDEPLOYED");
    expect(second).toMatchObject({ decision: "SKIPPED", redeploymentId: first.redeploymentId });
    expect(second.reason).toContain(`already redeployed as ${first.redeploymentId}`);
    expect(codeDeploy.commandCalls(CreateDeploymentCommand)).toHaveLength(1);
    // The duplicate touched no agent either: the redeployment may be running on it.
    expect(fakeSsm.installsOn("i-0aaa")).toBe(1);
  });

  it("rethrows DeploymentLimitExceededException when no retry queue is configured, and the retry still redeploys", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LIMIT0001", [scriptFailedTarget("i-0aaa")]);
    fakeCodeDeploy.limitExceeded = true;

    const failure = await run("d-LIMIT0001").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RedeployDeferredError);
    expect((failure as Error).cause).toBeInstanceOf(DeploymentLimitExceededException);
    expect(metricNames()).not.toContain("RedeploySkipped");

    // The retry finds the agent already upgraded by the first attempt and still counts that change.
    fakeCodeDeploy.limitExceeded = false;
    const retry = await run("d-LIMIT0001");
    expect(retry.decision).toBe("REDEPLOYED");
    expect(retry.upgraded).toEqual([{ instanceId: "i-0aaa", from: "1.7.1", to: LATEST_AGENT }]);
  });

  it("refuses to work on a failure another invocation holds, with a retryable error", async () => {
    fakeSsm.add("i-0aaa");
    addFailure("d-LEASE0001", [agentTarget("i-0aaa")]);
    dynamodb
      .on(PutItemCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} }),
      );

    await expect(run("d-LEASE0001", {}, dynamoLease("agentfix-leases"))).rejects.toBeInstanceOf(
      DeploymentLeaseHeldError,
    );
    expect(dynamodb.commandCalls(PutItemCommand)[0]?.args[0].input.Item?.pk).toEqual({
      S: "deployment#d-LEASE0001",
    });
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("holds the deployment lease while it works and releases it when done", async () => {
    fakeSsm.add("i-0aaa");
    addFailure("d-LEASE0002", [agentTarget("i-0aaa")]);
    dynamodb.on(PutItemCommand).resolves({});

    await run("d-LEASE0002", {}, dynamoLease("agentfix-leases"));

    const puts = dynamodb.commandCalls(PutItemCommand).map((call) => call.args[0].input.Item);
    expect(puts).toHaveLength(2);
    expect(puts[0]).toMatchObject({ pk: { S: "deployment#d-LEASE0002" }, holder: { S: "req-1" } });
    expect(Number(puts[1]?.expiresAt?.N)).toBeLessThan(Number(puts[0]?.expiresAt?.N));
    expect(Number(puts[1]?.expiresAt?.N)).toBeLessThanOrEqual(Date.now());
  });
});

describe("deployment failure: which agents it upgrades", () => {
  it("leaves a terminated or offline instance alone without holding up the others", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    fakeSsm.add("i-0bbb", { ssm: "absent" });
    fakeSsm.add("i-0ccc", { ssm: "ConnectionLost" });
    addFailure("d-OFFLINE01", [agentTarget("i-0aaa"), agentTarget("i-0bbb"), agentTarget("i-0ccc")]);

    const report = await run("d-OFFLINE01");

    expect(report.decision).toBe("REDEPLOYED");
    expect(report.upgraded.map((agent) => agent.instanceId)).toEqual(["i-0aaa"]);
    expect(report.notUpgraded.map((item) => item.instanceId).sort()).toEqual(["i-0bbb", "i-0ccc"]);
    expect(report.notUpgraded[0]?.reason).toContain("never came Online with SSM");
    expect(fakeSsm.installsOn("i-0bbb") + fakeSsm.installsOn("i-0ccc")).toBe(0);
  });

  it("never touches an agent on an instance a running deployment covers", async () => {
    addFailure("d-BUSY00001", [scriptFailedTarget("i-0aaa"), scriptFailedTarget("i-0bbb")]);
    // A launch deployment runs on i-0bbb right now (created before the failure, still in progress).
    fakeCodeDeploy.add({
      info: {
        ...failedDeployment("d-RUNNING01"),
        status: "InProgress",
        creator: "autoscaling",
        createTime: new Date(Date.now() - 20 * MINUTE),
      },
      targets: [{ targetId: "i-0bbb", status: "InProgress", lifecycleEvents: [] }],
    });

    const { free, leftAlone } = await DeploymentGuard.start(APP, GROUP, ["i-0aaa", "i-0bbb"]);

    expect(free).toEqual(["i-0aaa"]);
    expect(leftAlone).toEqual([
      { instanceId: "i-0bbb", reason: expect.stringContaining("deployment d-RUNNING01 is running on it") },
    ]);
  });

  it("reads more than 25 failed instances in pages and batches of 25", async () => {
    const ids = Array.from({ length: 30 }, (_, index) => `i-${String(index).padStart(4, "0")}`);
    for (const id of ids) fakeSsm.add(id, { version: "1.7.1" });
    addFailure("d-MANY00001", ids.map(agentTarget));

    const report = await run("d-MANY00001");

    expect(report.failedTargets.map((target) => target.instanceId)).toEqual(ids);
    expect(
      codeDeploy.commandCalls(ListDeploymentTargetsCommand, {
        deploymentId: "d-MANY00001",
        targetFilters: { TargetStatus: ["Failed"] },
      }),
    ).toHaveLength(2);
    const batches = codeDeploy
      .commandCalls(BatchGetDeploymentTargetsCommand)
      .map((call) => call.args[0].input.targetIds?.length);
    expect(batches).toEqual([25, 5]);
    expect(report.upgraded).toHaveLength(30);
    expect(report.decision).toBe("REDEPLOYED");
  });

  it("falls back to the instances API when the targets API cannot describe the deployment", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LEGACY001", [scriptFailedTarget("i-0aaa")]);
    const deployment = fakeCodeDeploy.deployments.get("d-LEGACY001");
    if (deployment) deployment.targetsUnavailable = true;

    const report = await run("d-LEGACY001");

    expect(codeDeploy.commandCalls(BatchGetDeploymentInstancesCommand)).toHaveLength(1);
    expect(report.failedTargets).toEqual([
      expect.objectContaining({
        instanceId: "i-0aaa",
        classification: "APPLICATION",
        errorCode: "ScriptFailed",
      }),
    ]);
    expect(report.decision).toBe("REDEPLOYED");
  });

  it("falls back to the instances API when the targets API lists no failed instance", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LEGACY002", [agentTarget("i-0aaa")]);
    const deployment = fakeCodeDeploy.deployments.get("d-LEGACY002");
    if (deployment) deployment.targetsEmpty = true;

    const report = await run("d-LEGACY002");

    expect(report.failedTargets).toEqual([
      expect.objectContaining({ instanceId: "i-0aaa", classification: "AGENT" }),
    ]);
    expect(report.decision).toBe("REDEPLOYED");
  });

  it("decides and reports in a dry run without upgrading or deploying", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DRYRUN001", [agentTarget("i-0aaa")]);

    const report = await run("d-DRYRUN001", { DRY_RUN: true });

    expect(report.decision).toBe("DRY_RUN");
    expect(report.reason).toContain("would upgrade the agent on i-0aaa and redeploy");
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(codeDeploy.commandCalls(CreateDeploymentCommand)).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith("RedeployDryRun", "Count", 1);
  });
});

describe("deployment failure: reporting", () => {
  it("emits exactly one decision metric per invocation", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-METRIC001", [agentTarget("i-0aaa")]);

    const report: FailureReport = await run("d-METRIC001");

    const decisions = metricNames().filter((name) => name.startsWith("Redeploy"));
    expect(decisions).toEqual(["RedeployCreated"]);
    expect(report.elapsedSeconds).toBeGreaterThanOrEqual(0);
  });
});
