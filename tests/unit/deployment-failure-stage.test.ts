import { GetDeploymentCommand, ListDeploymentsCommand } from "@aws-sdk/client-codedeploy";
import { describe, expect, it } from "vitest";
import { loadFailureConfig } from "../../functions/core/config.js";
import {
  addFailure,
  addMetric,
  agentTarget,
  codeDeploy,
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
