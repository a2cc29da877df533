import type { LifecycleEvent } from "@aws-sdk/client-codedeploy";
import { describe, expect, it } from "vitest";
import { classifyTarget, isNonAgentErrorCode } from "../../functions/core/failure/classify.js";

const failed = (name: string, errorCode: string, message: string): LifecycleEvent => ({
  lifecycleEventName: name,
  status: "Failed",
  diagnostics: { errorCode: errorCode as "UnknownError", message, scriptName: "scripts/start.sh" },
});
const ok = (name: string): LifecycleEvent => ({ lifecycleEventName: name, status: "Succeeded" });
const skipped = (name: string): LifecycleEvent => ({ lifecycleEventName: name, status: "Skipped" });

describe("classifying a failed instance", () => {
  it("blames the agent when it never received the lifecycle event", () => {
    const target = classifyTarget({
      instanceId: "i-1",
      lifecycleEvents: [
        failed(
          "BeforeInstall",
          "UnknownError",
          "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy agent logs on your host and make sure the agent is running and can connect to the CodeDeploy server.",
        ),
        skipped("Install"),
      ],
    });
    expect(target).toMatchObject({
      classification: "AGENT",
      lifecycleEvent: "BeforeInstall",
      errorCode: "UnknownError",
    });
  });

  it("blames the agent when it restarted in the middle of an event", () => {
    const target = classifyTarget({
      instanceId: "i-1",
      lifecycleEvents: [
        ok("ApplicationStop"),
        failed(
          "Install",
          "UnknownError",
          "Failed: Failing in-progress lifecycle event after an agent restart",
        ),
      ],
    });
    expect(target.classification).toBe("AGENT");
  });

  it("blames the agent when every lifecycle event was skipped", () => {
    const target = classifyTarget({
      instanceId: "i-1",
      lifecycleEvents: [skipped("ApplicationStop"), skipped("DownloadBundle")],
    });
    expect(target.classification).toBe("AGENT");
    expect(target.message).toContain("not installed or not running");
  });

  it.each(["ScriptFailed", "ScriptMissing", "ScriptNotExecutable", "ScriptTimedOut"])(
    "blames the application for %s",
    (code) => {
      const target = classifyTarget({
        instanceId: "i-1",
        lifecycleEvents: [
          ok("ApplicationStop"),
          failed("ApplicationStart", code, "script said no"),
          skipped("ValidateService"),
        ],
      });
      expect(target).toMatchObject({
        instanceId: "i-1",
        classification: "APPLICATION",
        lifecycleEvent: "ApplicationStart",
        errorCode: code,
        scriptName: "scripts/start.sh",
        message: "script said no",
      });
    },
  );

  it("calls an unknown error with another message neither", () => {
    const target = classifyTarget({
      instanceId: "i-1",
      lifecycleEvents: [ok("ApplicationStop"), failed("DownloadBundle", "UnknownError", "Access Denied")],
    });
    expect(target).toMatchObject({
      classification: "OTHER",
      lifecycleEvent: "DownloadBundle",
      message: "Access Denied",
    });
  });

  it("calls an instance with no lifecycle events neither", () => {
    expect(classifyTarget({ instanceId: "i-1", lifecycleEvents: [] })).toEqual({
      instanceId: "i-1",
      classification: "OTHER",
    });
  });

  it("keeps long diagnostics short in the report", () => {
    const target = classifyTarget({
      instanceId: "i-1",
      lifecycleEvents: [failed("Install", "ScriptFailed", "x".repeat(5_000))],
    });
    expect(target.message?.length).toBeLessThanOrEqual(300);
  });
});

describe("deployment error codes", () => {
  it("matches codes an agent cannot cause as strings, including ones the API enum lacks", () => {
    expect(isNonAgentErrorCode("INVALID_REVISION")).toBe(true);
    expect(isNonAgentErrorCode("UNABLE_TO_SEND_ASG")).toBe(true);
    expect(isNonAgentErrorCode("AGENT_ISSUE")).toBe(false);
    expect(isNonAgentErrorCode("HEALTH_CONSTRAINTS")).toBe(false);
    expect(isNonAgentErrorCode("TIMEOUT")).toBe(false);
    expect(isNonAgentErrorCode(undefined)).toBe(false);
  });
});
