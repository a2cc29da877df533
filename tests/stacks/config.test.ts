import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_HOOK_NAME,
  DEFAULT_PINNED_AGENT_VERSION,
  loadStageConfig,
  parseStageConfig,
  StageConfigError,
} from "../../stacks/config.js";

function errorOf(action: () => unknown): StageConfigError {
  try {
    action();
  } catch (error) {
    if (error instanceof StageConfigError) return error;
    throw error;
  }
  throw new Error("expected a StageConfigError");
}

function projectWith(config: unknown): string {
  const directory = mkdtempSync(join(tmpdir(), "agentfix-config-"));
  writeFileSync(join(directory, "agentfix.config.json"), JSON.stringify(config));
  return directory;
}

describe("stage configuration", () => {
  it("pins the agent version on production and UAT stages and installs the latest elsewhere", () => {
    expect(parseStageConfig("prod", {}).agent.version).toBe(DEFAULT_PINNED_AGENT_VERSION);
    expect(parseStageConfig("production", {}).agent.version).toBe(DEFAULT_PINNED_AGENT_VERSION);
    expect(parseStageConfig("uat", {}).agent.version).toBe(DEFAULT_PINNED_AGENT_VERSION);
    expect(parseStageConfig("dev", {}).agent.version).toBe("");
    expect(parseStageConfig("dev", { agent: { version: "latest" } }).agent.version).toBe("");
    expect(parseStageConfig("dev", { agent: { version: "1.7.1" } }).agent.version).toBe("1.7.1");
  });

  it("refuses to leave a production stage on the latest agent", () => {
    const error = errorOf(() => parseStageConfig("prod", { agent: { version: "" } }));
    expect(error.fields).toEqual(["agent.version"]);
    expect(error.message).toContain('stage "prod" runs production workloads');
  });

  it("fills in every default", () => {
    const config = parseStageConfig("dev", {});
    expect(config.groups).toEqual([]);
    expect(config.deploymentGroups).toEqual([]);
    expect(config.dryRun).toBe(false);
    expect(config.agent).toEqual({
      package: "AWSCodeDeployAgent",
      version: "",
      verify: true,
      installAttempts: 2,
      pollIntervalMs: 5000,
    });
    expect(config.hook).toEqual({
      name: DEFAULT_HOOK_NAME,
      managedBy: "group",
      heartbeatTimeoutSeconds: 900,
      defaultResult: "ABANDON",
    });
    expect(config.launch).toMatchObject({
      failureResult: "ABANDON",
      timeoutSeconds: 300,
      visibilityTimeoutSeconds: 600,
      resumeAfterSeconds: 10,
      batchSize: 50,
      maxBatchingWindowSeconds: 5,
      maxConcurrency: 50,
      maxReceiveCount: 10,
    });
    expect(config.failure).toMatchObject({
      maxRedeploys: 1,
      redeployWhen: "agent-changed",
      retryAttempts: 2,
      maxEventAgeSeconds: 3600,
    });
    expect(config.sweep).toMatchObject({
      enabled: true,
      schedule: "rate(5 minutes)",
      staleAfterSeconds: 300,
    });
    expect(config.association).toMatchObject({
      enabled: true,
      schedule: "cron(0 3 ? * * *)",
      applyOnlyAtCronInterval: true,
      complianceSeverity: "HIGH",
      maxConcurrency: "10%",
      maxErrors: "10%",
    });
    expect(config.testEvents).toEqual({ enabled: true, ensureRegistry: true });
  });

  it("lets the stack manage the hook when groups are listed, and the groups' own code otherwise", () => {
    expect(parseStageConfig("dev", { groups: ["web"] }).hook.managedBy).toBe("stack");
    expect(parseStageConfig("dev", {}).hook.managedBy).toBe("group");
    expect(parseStageConfig("dev", { groups: ["web"], hook: { managedBy: "group" } }).hook.managedBy).toBe(
      "group",
    );
    const error = errorOf(() => parseStageConfig("dev", { hook: { managedBy: "stack" } }));
    expect(error.fields).toEqual(["hook.managedBy"]);
  });

  it("targets the association at the groups in scope, or at every Auto Scaling instance when none is listed", () => {
    expect(parseStageConfig("dev", { groups: ["web", "api"] }).association.target).toEqual({
      key: "tag:aws:autoscaling:groupName",
      values: ["web", "api"],
    });
    expect(parseStageConfig("dev", {}).association.target).toEqual({
      key: "tag-key",
      values: ["aws:autoscaling:groupName"],
    });
    const target = { key: "tag:Name", values: ["web-server"] };
    expect(parseStageConfig("dev", { association: { target } }).association.target).toEqual(target);
  });

  it("names every bad field in one error", () => {
    const error = errorOf(() =>
      parseStageConfig("dev", {
        groups: ["web,api"],
        deploymentGroups: ["billing"],
        agent: { package: "CodeDeployAgent", version: "one" },
        hook: { heartbeatTimeoutSeconds: 10, defaultResult: "RETRY" },
        launch: { batchSize: 100 },
        association: {
          maxConcurrency: "100%",
          maxErrors: "5",
          schedule: "daily",
          target: { key: "InstanceIds", values: ["web-1"] },
        },
        alarms: { email: "not-an-address" },
        logRetentionDays: 10,
        typo: true,
      }),
    );
    expect(error).toBeInstanceOf(StageConfigError);
    expect(error.fields.sort()).toEqual(
      [
        "(root)",
        "agent.package",
        "agent.version",
        "alarms.email",
        "association.maxConcurrency",
        "association.maxErrors",
        "association.schedule",
        "association.target.values.0",
        "deploymentGroups.0",
        "groups.0",
        "hook.defaultResult",
        "hook.heartbeatTimeoutSeconds",
        "launch.batchSize",
        "logRetentionDays",
      ].sort(),
    );
    expect(error.message).toMatch(/^Invalid agentfix configuration for stage "dev"/);
    expect(error.message).toContain('Unrecognized key: "typo"');
  });

  it("keeps the launch queue's redelivery inside the hook's heartbeat window", () => {
    const tooSlow = errorOf(() => parseStageConfig("dev", { launch: { timeoutSeconds: 450 } }));
    expect(tooSlow.fields).toEqual(["launch.visibilityTimeoutSeconds"]);
    expect(tooSlow.message).toContain("must stay below hook.heartbeatTimeoutSeconds (900)");

    const tooShort = errorOf(() =>
      parseStageConfig("dev", { launch: { timeoutSeconds: 120, visibilityTimeoutSeconds: 100 } }),
    );
    expect(tooShort.fields).toEqual(["launch.visibilityTimeoutSeconds"]);
    expect(tooShort.message).toContain("must exceed launch.timeoutSeconds (120)");

    const fits = parseStageConfig("dev", {
      launch: { timeoutSeconds: 300 },
      hook: { heartbeatTimeoutSeconds: 3600 },
    });
    expect(fits.launch.visibilityTimeoutSeconds).toBe(600);
  });

  it("requires a batching window for batches above ten messages and a sweep faster than the heartbeat", () => {
    const error = errorOf(() =>
      parseStageConfig("dev", {
        launch: { maxBatchingWindowSeconds: 0 },
        sweep: { staleAfterSeconds: 900 },
      }),
    );
    expect(error.fields.sort()).toEqual(["launch.maxBatchingWindowSeconds", "sweep.staleAfterSeconds"]);
  });

  it("reads agentfix.config.json, the stage's entry over the defaults, then AGENTFIX_CONFIG over both", () => {
    const cwd = projectWith({
      default: { groups: ["web"], dryRun: true, agent: { installAttempts: 3 } },
      prod: { groups: ["web-prod"], agent: { version: "1.7.1" } },
    });

    const dev = loadStageConfig("dev", { cwd, env: {} });
    expect(dev.groups).toEqual(["web"]);
    expect(dev.dryRun).toBe(true);

    const prod = loadStageConfig("prod", { cwd, env: {} });
    expect(prod.groups).toEqual(["web-prod"]);
    expect(prod.agent).toMatchObject({ version: "1.7.1", installAttempts: 3 });

    const overridden = loadStageConfig("prod", {
      cwd,
      env: { AGENTFIX_CONFIG: JSON.stringify({ dryRun: false, agent: { version: "1.8.1" } }) },
    });
    expect(overridden.dryRun).toBe(false);
    expect(overridden.agent).toMatchObject({ version: "1.8.1", installAttempts: 3 });
  });

  it("reads the file named by AGENTFIX_CONFIG_FILE and names its source in errors", () => {
    const cwd = projectWith({ uat: { hook: { heartbeatTimeoutSeconds: 99_999 } } });
    const error = errorOf(() =>
      loadStageConfig("uat", {
        cwd: tmpdir(),
        env: { AGENTFIX_CONFIG_FILE: join(cwd, "agentfix.config.json") },
      }),
    );
    expect(error.message).toContain(`${join(cwd, "agentfix.config.json")} "uat"`);
    expect(error.fields).toEqual(["hook.heartbeatTimeoutSeconds"]);
  });

  it("rejects configuration that is not a JSON object", () => {
    expect(() => loadStageConfig("dev", { cwd: tmpdir(), env: { AGENTFIX_CONFIG: "{groups:" } })).toThrow(
      /AGENTFIX_CONFIG: not valid JSON/,
    );
    const cwd = projectWith({ dev: ["web"] });
    expect(() => loadStageConfig("dev", { cwd, env: {} })).toThrow(/dev: must be an object/);
  });

  it("uses the defaults when there is no configuration file", () => {
    const config = loadStageConfig("dev", { cwd: mkdtempSync(join(tmpdir(), "agentfix-empty-")), env: {} });
    expect(config.groups).toEqual([]);
    expect(config.stage).toBe("dev");
  });
});
