import { describe, expect, it } from "vitest";
import { ConfigError, loadFailureConfig, loadLaunchConfig } from "../../functions/core/config.js";

describe("configuration", () => {
  it("gives every launch setting a default when nothing is set", () => {
    const config = loadLaunchConfig({ STAGE: "dev" });
    expect(config).toMatchObject({
      AGENT_PACKAGE: "AWSCodeDeployAgent",
      AGENT_VERSION: "",
      TARGET_GROUPS: [],
      FAILURE_RESULT: "CONTINUE",
      INSTALL_ATTEMPTS: 2,
      DRY_RUN: false,
    });
  });

  it("reads lists, booleans and numbers", () => {
    const config = loadLaunchConfig({
      STAGE: "dev",
      TARGET_GROUPS: " web-asg, api-asg ,",
      DRY_RUN: "yes",
      INSTALL_ATTEMPTS: "3",
      AGENT_VERSION: "latest",
    });
    expect(config.TARGET_GROUPS).toEqual(["web-asg", "api-asg"]);
    expect(config.DRY_RUN).toBe(true);
    expect(config.INSTALL_ATTEMPTS).toBe(3);
    expect(config.AGENT_VERSION).toBe("");
  });

  it("names every bad variable in one error", () => {
    const load = () =>
      loadLaunchConfig({
        STAGE: "dev",
        AGENT_PACKAGE: "CodeDeploy",
        FAILURE_RESULT: "RETRY",
        INSTALL_ATTEMPTS: "many",
      });
    expect(load).toThrow(ConfigError);
    for (const name of ["AGENT_PACKAGE", "FAILURE_RESULT", "INSTALL_ATTEMPTS"]) {
      expect(load).toThrow(name);
    }
  });

  it("requires application/group pairs for the deployment groups in scope", () => {
    expect(() => loadFailureConfig({ STAGE: "dev", TARGET_DEPLOYMENT_GROUPS: "app/dg,lonely" })).toThrow(
      /TARGET_DEPLOYMENT_GROUPS\.1/,
    );
    expect(
      loadFailureConfig({ STAGE: "dev", TARGET_DEPLOYMENT_GROUPS: "app/dg" }).TARGET_DEPLOYMENT_GROUPS,
    ).toEqual(["app/dg"]);
  });
});
