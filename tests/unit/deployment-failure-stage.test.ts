import {
  CreateDeploymentCommand,
  GetDeploymentCommand,
  ListDeploymentsCommand,
} from "@aws-sdk/client-codedeploy";
import { describe, expect, it } from "vitest";
import { loadFailureConfig } from "../../functions/core/config.js";
import {
  addFailure,
  addMetric,
  agentTarget,
  codeDeploy,
  failedDeployment,
  fakeCodeDeploy,
  fakeSsm,
  run,
  useFailureHarness,
} from "./support/failure-fakes.js";

/**
 * "Fail open and stay in your stage", the failure path's part: a stage acts only on the deployment
 * groups it names, and never redeploys a failure another stage claimed.
 */
useFailureHarness();

const QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-test-failure-retry";

describe("a stage acts only on the deployment groups it names", () => {
  it("skips every failure when the stage names no deployment group, before any AWS call", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-NOSCOPE01", [agentTarget("i-0aaa")]);

    const report = await run("d-NOSCOPE01", { TARGET_DEPLOYMENT_GROUPS: [] });

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("Stage test names no deployment groups");
    expect(codeDeploy.commandCalls(GetDeploymentCommand)).toHaveLength(0);
    expect(codeDeploy.commandCalls(ListDeploymentsCommand)).toHaveLength(0);
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith("RedeploySkipped", "Count", 1);
  });

  it("acts on every deployment group of the account only when told so with *", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-ANYGROUP1", [agentTarget("i-0aaa")], {
      applicationName: "billing",
      deploymentGroupName: "billing-dg",
    });

    const report = await run("d-ANYGROUP1", { TARGET_DEPLOYMENT_GROUPS: ["*"] });

    expect(report.decision).toBe("REDEPLOYED");
    expect(fakeCodeDeploy.created[0]).toMatchObject({
      applicationName: "billing",
      deploymentGroupName: "billing-dg",
    });
  });

  it("leaves alone a group the stage does not name, even next to one it names", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-OTHERGRP1", [agentTarget("i-0aaa")], { deploymentGroupName: "api-dg" });

    const report = await run("d-OTHERGRP1", { TARGET_DEPLOYMENT_GROUPS: ["web-app/web-dg"] });

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("web-app/api-dg is not one of the deployment groups in scope");
    expect(fakeSsm.installs).toBe(0);
  });

  it("reads an empty TARGET_DEPLOYMENT_GROUPS as no group, and * only alone as every group", () => {
    const groups = (value: string) =>
      loadFailureConfig({ STAGE: "dev", TARGET_DEPLOYMENT_GROUPS: value }).TARGET_DEPLOYMENT_GROUPS;
    expect(groups("")).toEqual([]);
    expect(loadFailureConfig({ STAGE: "dev" }).TARGET_DEPLOYMENT_GROUPS).toEqual([]);
    expect(groups(" * ")).toEqual(["*"]);
    expect(groups("app/dg,app/api")).toEqual(["app/dg", "app/api"]);
    expect(() => groups("*,app/dg")).toThrow(/TARGET_DEPLOYMENT_GROUPS.*\* stands alone/);
    // Not a wildcard: a group named "*" would be read as every group of the application.
    expect(() => groups("app/*")).toThrow(/TARGET_DEPLOYMENT_GROUPS\.0/);
  });
});

describe("no stage redeploys a failure another stage claimed", () => {
  it("marks the redeployment with the stage that made it", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-MARKED001", [agentTarget("i-0aaa")]);

    const report = await run("d-MARKED001", { STAGE: "alice-dev" });

    expect(report.decision).toBe("REDEPLOYED");
    expect(fakeCodeDeploy.created[0]?.description).toBe(
      "Release 42 of the web tier [agentfix alice-dev redeploy of d-MARKED001 attempt 1]",
    );
  });

  it("leaves the failure of another stage's redeployment to that stage", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-THEIRS001", [agentTarget("i-0aaa")], {
      description: "Release 42 [agentfix prod redeploy of d-FIRST0001 attempt 1]",
    });

    const report = await run("d-THEIRS001", { STAGE: "dev", MAX_REDEPLOYS: 3 });

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("stage prod made");
    expect(report.reason).toContain("d-FIRST0001");
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("goes on with its own chain", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-OURS00001", [agentTarget("i-0aaa")], {
      description: "Release 42 [agentfix dev redeploy of d-FIRST0001 attempt 1]",
    });

    const report = await run("d-OURS00001", { STAGE: "dev", MAX_REDEPLOYS: 2 });

    expect(report).toMatchObject({ decision: "REDEPLOYED", originalDeploymentId: "d-FIRST0001", attempt: 2 });
    expect(fakeCodeDeploy.created[0]?.description).toBe(
      "Release 42 [agentfix dev redeploy of d-FIRST0001 attempt 2]",
    );
  });

  it("leaves a failed rollback of another stage's redeployment to that stage", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-REDEPL001", [agentTarget("i-0aaa")], {
      description: "Release 42 [agentfix prod redeploy of d-FIRST0001 attempt 1]",
      rollbackInfo: { rollbackDeploymentId: "d-ROLLBK001" },
    });
    addFailure("d-ROLLBK001", [agentTarget("i-0aaa")], {
      creator: "codeDeployRollback",
      description: undefined,
      rollbackInfo: { rollbackTriggeringDeploymentId: "d-REDEPL001" },
    });

    const report = await run("d-ROLLBK001", { STAGE: "dev", MAX_REDEPLOYS: 3 });

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("stage prod made");
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("skips a failure another stage already redeployed, naming that stage and its redeployment", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-SHARED001", [agentTarget("i-0aaa")]);
    fakeCodeDeploy.add({
      info: {
        ...failedDeployment("d-PRODREDP1"),
        status: "InProgress",
        createTime: new Date(),
        description: "Release 42 of the web tier [agentfix prod redeploy of d-SHARED001 attempt 1]",
      },
      targets: [],
    });

    const report = await run("d-SHARED001", { STAGE: "dev" });

    expect(report).toMatchObject({ decision: "SKIPPED", redeploymentId: "d-PRODREDP1" });
    expect(report.reason).toContain("already redeployed by stage prod as d-PRODREDP1");
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("counts a marker of an earlier release, which named no stage, toward the cap", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LEGACY001", [agentTarget("i-0aaa")], {
      description: "Release 42 [agentfix redeploy of d-FIRST0001 attempt 1]",
    });

    const report = await run("d-LEGACY001", { STAGE: "dev", MAX_REDEPLOYS: 1 });

    expect(report).toMatchObject({ decision: "GAVE_UP", originalDeploymentId: "d-FIRST0001", attempt: 2 });
    expect(report.reason).toContain("made by an earlier release");
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("finds a redeployment an earlier release made, and makes no second one", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LEGACY002", [agentTarget("i-0aaa")]);
    fakeCodeDeploy.add({
      info: {
        ...failedDeployment("d-OLDREDEP1"),
        status: "Succeeded",
        createTime: new Date(),
        description: "Release 42 of the web tier [agentfix redeploy of d-LEGACY002 attempt 1]",
      },
      targets: [],
    });

    const report = await run("d-LEGACY002", { STAGE: "dev" });

    expect(report).toMatchObject({ decision: "SKIPPED", redeploymentId: "d-OLDREDEP1" });
    expect(report.reason).toContain("already redeployed as d-OLDREDEP1");
  });

  it("two stages on the same failure: the one that finds the other's redeployment after its upgrade stops there", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-RACE00001", [agentTarget("i-0aaa")]);
    // Stage prod creates its redeployment while stage dev is upgrading the agents.
    fakeSsm.onSend = () => {
      if (fakeCodeDeploy.deployments.has("d-PRODRACE1")) return;
      fakeCodeDeploy.add({
        info: {
          ...failedDeployment("d-PRODRACE1"),
          status: "InProgress",
          createTime: new Date(),
          description: "[agentfix prod redeploy of d-RACE00001 attempt 1]",
        },
        targets: [],
      });
    };

    const report = await run("d-RACE00001", { STAGE: "dev" });

    expect(report).toMatchObject({ decision: "SKIPPED", redeploymentId: "d-PRODRACE1" });
    expect(report.reason).toContain("by stage prod");
    expect(codeDeploy.commandCalls(CreateDeploymentCommand)).toHaveLength(0);
  });

  it("two stages on the same failure: the one CodeDeploy refuses waits, then leaves the failure to the other", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-RACE00002", [agentTarget("i-0aaa")]);
    // Stage prod's redeployment was created between dev's last look and dev's CreateDeployment.
    fakeCodeDeploy.limitExceeded = true;

    const first = await run("d-RACE00002", { STAGE: "dev", FAILURE_RETRY_QUEUE_URL: QUEUE });
    expect(first.decision).toBe("DEFERRED");

    fakeCodeDeploy.limitExceeded = false;
    fakeCodeDeploy.add({
      info: {
        ...failedDeployment("d-PRODRACE2"),
        status: "InProgress",
        createTime: new Date(),
        description: "[agentfix prod redeploy of d-RACE00002 attempt 1]",
      },
      targets: [],
    });
    const again = await run("d-RACE00002", { STAGE: "dev", FAILURE_RETRY_QUEUE_URL: QUEUE });

    expect(again).toMatchObject({ decision: "SKIPPED", redeploymentId: "d-PRODRACE2" });
    expect(again.reason).toContain("by stage prod");
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });
});
