import type { DeploymentInfo } from "@aws-sdk/client-codedeploy";
import { describe, expect, it } from "vitest";
import { whyNotRedeployable } from "../../functions/core/failure/policy.js";
import {
  chainOf,
  composeDescription,
  formatMarker,
  MAX_DESCRIPTION_CHARS,
  parseMarker,
  redeploymentInput,
} from "../../functions/core/failure/redeploy.js";

describe("redeployment marker", () => {
  it("round-trips the stage, the original deployment and the attempt", () => {
    const marker = { originalDeploymentId: "d-ABCDEF123", attempt: 2, stage: "dev" };
    expect(formatMarker(marker)).toBe("[agentfix dev redeploy of d-ABCDEF123 attempt 2]");
    expect(parseMarker(`Release 42 ${formatMarker(marker)}`)).toEqual(marker);
  });

  it("reads the marker of earlier releases, which named no stage, as a redeployment all the same", () => {
    expect(parseMarker("Release 42 [agentfix redeploy of d-ABCDEF123 attempt 1]")).toEqual({
      originalDeploymentId: "d-ABCDEF123",
      attempt: 1,
    });
  });

  it("reads any stage name the stack allows, even one that reads like the marker's own words", () => {
    for (const stage of ["prod", "alice-sandbox-2", "redeploy", "x".repeat(36)]) {
      const marker = { originalDeploymentId: "d-ABCDEF123", attempt: 1, stage };
      expect(parseMarker(`Release 42 ${formatMarker(marker)}`)).toEqual(marker);
    }
  });

  it("finds no marker in a description this service did not write", () => {
    expect(parseMarker("Release 42 [redeploy of d-ABCDEF123]")).toBeUndefined();
    expect(parseMarker(undefined)).toBeUndefined();
  });

  it("places a failure without a marker at the start of its chain", () => {
    expect(chainOf({ description: "Release 42" }, "d-ABCDEF123")).toEqual({
      originalDeploymentId: "d-ABCDEF123",
      attempt: 0,
    });
    expect(chainOf({ description: "x [agentfix redeploy of d-ORIGINAL1 attempt 1]" }, "d-REDEPLOY1")).toEqual(
      {
        originalDeploymentId: "d-ORIGINAL1",
        attempt: 1,
      },
    );
    expect(
      chainOf({ description: "[agentfix prod redeploy of d-ORIGINAL1 attempt 1]" }, "d-REDEPLOY1"),
    ).toEqual({ originalDeploymentId: "d-ORIGINAL1", attempt: 1, stage: "prod" });
  });
});

describe("redeployment description", () => {
  const marker = { originalDeploymentId: "d-ABCDEF123", attempt: 1, stage: "dev" };

  it("keeps the original's text when it fits", () => {
    expect(composeDescription("Release 42", marker)).toBe(
      "Release 42 [agentfix dev redeploy of d-ABCDEF123 attempt 1]",
    );
  });

  it("replaces an earlier marker instead of stacking them, an earlier release's too", () => {
    const earlier = "Release 42 [agentfix dev redeploy of d-ABCDEF123 attempt 1]";
    expect(composeDescription(earlier, { ...marker, attempt: 2 })).toBe(
      "Release 42 [agentfix dev redeploy of d-ABCDEF123 attempt 2]",
    );
    const legacy = "Release 42 [agentfix redeploy of d-ABCDEF123 attempt 1]";
    expect(composeDescription(legacy, { ...marker, attempt: 2 })).toBe(
      "Release 42 [agentfix dev redeploy of d-ABCDEF123 attempt 2]",
    );
  });

  it("keeps the marker of the longest stage name whole within 100 characters", () => {
    const longest = { originalDeploymentId: "d-ABCDEF123", attempt: 10, stage: "s".repeat(36) };
    const description = composeDescription("Release 42 of the web tier", longest);
    expect(description.length).toBeLessThanOrEqual(MAX_DESCRIPTION_CHARS);
    expect(parseMarker(description)).toEqual(longest);
  });

  it("shortens a long text to CodeDeploy's 100-character limit and keeps the marker whole", () => {
    const description = composeDescription("A very long release note ".repeat(10), marker);
    expect(description.length).toBeLessThanOrEqual(MAX_DESCRIPTION_CHARS);
    expect(description.endsWith(formatMarker(marker))).toBe(true);
    expect(description.startsWith("A very long release note")).toBe(true);
  });

  it("is the marker alone when the original has no description", () => {
    expect(composeDescription(undefined, marker)).toBe(formatMarker(marker));
  });
});

describe("redeployment request", () => {
  const failed: DeploymentInfo = {
    applicationName: "web-app",
    deploymentGroupName: "web-dg",
    deploymentConfigName: "CodeDeployDefault.HalfAtATime",
    revision: { revisionType: "GitHub", gitHubLocation: { repository: "acme/web", commitId: "0123abc" } },
    description: "Release 42",
    fileExistsBehavior: "RETAIN",
    ignoreApplicationStopFailures: false,
    autoRollbackConfiguration: { enabled: true, events: ["DEPLOYMENT_FAILURE"] },
    updateOutdatedInstancesOnly: true,
    overrideAlarmConfiguration: { enabled: false, ignorePollAlarmFailure: false, alarms: [] },
  };

  it("repeats the failed deployment's revision and settings with the marker, leaving alarms to the group", () => {
    expect(
      redeploymentInput(failed, { originalDeploymentId: "d-ABCDEF123", attempt: 1, stage: "prod" }),
    ).toEqual({
      applicationName: "web-app",
      deploymentGroupName: "web-dg",
      deploymentConfigName: "CodeDeployDefault.HalfAtATime",
      revision: failed.revision,
      description: "Release 42 [agentfix prod redeploy of d-ABCDEF123 attempt 1]",
      fileExistsBehavior: "RETAIN",
      ignoreApplicationStopFailures: false,
      autoRollbackConfiguration: { enabled: true, events: ["DEPLOYMENT_FAILURE"] },
      updateOutdatedInstancesOnly: true,
    });
  });

  it("refuses a revision CodeDeploy cannot hand back", () => {
    expect(
      whyNotRedeployable({ revision: { revisionType: "AppSpecContent", appSpecContent: {} } }),
    ).toContain("AppSpecContent");
    expect(whyNotRedeployable({})).toContain("no revision");
    expect(whyNotRedeployable(failed)).toBeUndefined();
  });
});
