import { describe, expect, it } from "vitest";
import {
  ConfigError,
  coversAll,
  inScope,
  loadFailureConfig,
  loadLaunchConfig,
  loadSweepConfig,
} from "../../functions/core/config.js";

describe("configuration", () => {
  it("gives every launch setting a default when nothing is set", () => {
    const config = loadLaunchConfig({ STAGE: "dev" });
    expect(config).toMatchObject({
      AGENT_PACKAGE: "AWSCodeDeployAgent",
      AGENT_VERSION: "",
      // Nothing named is nothing in scope; fail open.
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

  it("reads * as every group, an empty list as none, and refuses * beside names", () => {
    const all = loadLaunchConfig({ STAGE: "dev", TARGET_GROUPS: "*" });
    expect(all.TARGET_GROUPS).toEqual(["*"]);
    expect(coversAll(all.TARGET_GROUPS)).toBe(true);
    expect(inScope(all.TARGET_GROUPS, "any-group")).toBe(true);

    const none = loadLaunchConfig({ STAGE: "dev", TARGET_GROUPS: "" });
    expect(coversAll(none.TARGET_GROUPS)).toBe(false);
    expect(inScope(none.TARGET_GROUPS, "any-group")).toBe(false);

    const named = loadLaunchConfig({ STAGE: "dev", TARGET_GROUPS: "web" });
    expect(inScope(named.TARGET_GROUPS, "web")).toBe(true);
    expect(inScope(named.TARGET_GROUPS, "api")).toBe(false);

    const failure = loadFailureConfig({ STAGE: "dev", TARGET_DEPLOYMENT_GROUPS: "*" });
    expect(failure.TARGET_DEPLOYMENT_GROUPS).toEqual(["*"]);
    expect(inScope(failure.TARGET_DEPLOYMENT_GROUPS, "shop/web")).toBe(true);
    expect(loadFailureConfig({ STAGE: "dev" }).TARGET_DEPLOYMENT_GROUPS).toEqual([]);

    expect(() => loadLaunchConfig({ STAGE: "dev", TARGET_GROUPS: "*,web" })).toThrow(
      /TARGET_GROUPS.*stands alone/,
    );
    expect(() => loadFailureConfig({ STAGE: "dev", TARGET_DEPLOYMENT_GROUPS: "shop/web,*" })).toThrow(
      /TARGET_DEPLOYMENT_GROUPS.*stands alone/,
    );
    expect(
      loadSweepConfig({
        TARGET_GROUPS: "*",
        LIFECYCLE_HOOK_NAME: "h",
        LAUNCH_QUEUE_URL: "https://q.example/1",
      }).TARGET_GROUPS,
    ).toEqual(["*"]);
  });
});
