import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadStageConfig, parseStageConfig, StageConfigError } from "../../stacks/config.js";
import { DEFAULT_PINS, defaultHookName } from "../../stacks/stage-policy.js";

const DEFAULT_PINNED_AGENT_VERSION = DEFAULT_PINS.AWSCodeDeployAgent;
const PROD = { groups: ["web-prod"] };

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
    expect(parseStageConfig("prod", PROD).agent.version).toBe(DEFAULT_PINNED_AGENT_VERSION);
    expect(parseStageConfig("production", PROD).agent.version).toBe(DEFAULT_PINNED_AGENT_VERSION);
    expect(parseStageConfig("uat", PROD).agent.version).toBe(DEFAULT_PINNED_AGENT_VERSION);
    expect(parseStageConfig("dev", {}).agent.version).toBe("");
    expect(parseStageConfig("dev", { agent: { version: "latest" } }).agent.version).toBe("");
    expect(parseStageConfig("dev", { agent: { version: "1.7.1" } }).agent.version).toBe("1.7.1");
  });

  it("refuses to leave a production stage on the latest agent", () => {
    const error = errorOf(() => parseStageConfig("prod", { ...PROD, agent: { version: "" } }));
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
      name: defaultHookName("dev"),
      managedBy: "group",
      heartbeatTimeoutSeconds: 900,
      defaultResult: "ABANDON",
    });
    expect(config.launch).toMatchObject({
      failureResult: "ABANDON",
      completion: "events",
      timeoutSeconds: 40,
      visibilityTimeoutSeconds: 50,
      resumeAfterSeconds: 10,
      registrationPollSeconds: 10,
      commandOverdueSeconds: 60,
      batchSize: 50,
      maxBatchingWindowSeconds: 2,
      maxConcurrency: 50,
      maxReceiveCount: 100,
    });
    expect(config.failure).toMatchObject({
      maxRedeploys: 1,
      redeployWhen: "agent-changed",
      retryAttempts: 2,
      maxEventAgeSeconds: 3600,
    });
    expect(config.sweep).toMatchObject({
      enabled: true,
      schedule: "rate(1 minute)",
      staleAfterSeconds: 30,
    });
    // No group listed: no association (it would reach every Auto Scaling instance of the account).
    expect(config.association).toMatchObject({
      enabled: false,
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

  it("targets the association at the groups in scope, and creates none when nothing is named", () => {
    const scoped = parseStageConfig("dev", { groups: ["web", "api"] }).association;
    expect(scoped).toMatchObject({
      enabled: true,
      target: { key: "tag:aws:autoscaling:groupName", values: ["web", "api"] },
    });
    const unscoped = parseStageConfig("dev", {});
    expect(unscoped.association.enabled).toBe(false);
    expect(unscoped.association.target).toBeUndefined();
    expect(unscoped.warnings.join("\n")).toContain("no State Manager association is created");
    const target = { key: "tag:Name", values: ["web-server"] };
    expect(parseStageConfig("dev", { association: { target } }).association).toMatchObject({
      enabled: true,
      target,
    });
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

  it("takes the polling launch path's own defaults when it is chosen", () => {
    const config = parseStageConfig("dev", { launch: { completion: "polling" } });
    expect(config.launch).toMatchObject({
      timeoutSeconds: 300,
      visibilityTimeoutSeconds: 600,
      maxBatchingWindowSeconds: 5,
      maxReceiveCount: 10,
    });
    expect(config.sweep).toMatchObject({ schedule: "rate(5 minutes)", staleAfterSeconds: 300 });
  });

  it("keeps the launch queue's redelivery inside the hook's heartbeat window", () => {
    const tooSlow = errorOf(() =>
      parseStageConfig("dev", { launch: { completion: "polling", timeoutSeconds: 450 } }),
    );
    expect(tooSlow.fields).toEqual(["launch.visibilityTimeoutSeconds"]);
    expect(tooSlow.message).toContain("must stay below hook.heartbeatTimeoutSeconds (900)");

    const tooShort = errorOf(() =>
      parseStageConfig("dev", { launch: { timeoutSeconds: 120, visibilityTimeoutSeconds: 100 } }),
    );
    expect(tooShort.fields).toEqual(["launch.visibilityTimeoutSeconds"]);
    expect(tooShort.message).toContain("must exceed launch.timeoutSeconds (120)");

    const fits = parseStageConfig("dev", {
      launch: { completion: "polling", timeoutSeconds: 300 },
      hook: { heartbeatTimeoutSeconds: 3600 },
    });
    expect(fits.launch.visibilityTimeoutSeconds).toBe(600);
    // Event completion: the message of a cut-off invocation is back 10 s after the function's timeout.
    expect(parseStageConfig("dev", { launch: { timeoutSeconds: 450 } }).launch.visibilityTimeoutSeconds).toBe(
      460,
    );
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

describe("stage rules that keep a stage from harming the account", () => {
  it("gives each stage its own launch hook", () => {
    expect(parseStageConfig("dev", {}).hook.name).toBe("agentfix-dev-install-codedeploy-agent");
    expect(parseStageConfig("prod", PROD).hook.name).toBe("agentfix-prod-install-codedeploy-agent");
    expect(parseStageConfig("dev", { hook: { name: "team-hook" } }).hook.name).toBe("team-hook");
  });

  it("refuses two stages of one file that share a group", () => {
    const cwd = projectWith({ dev: { groups: ["web", "api"] }, prod: { groups: ["web-prod", "api"] } });
    const error = errorOf(() => loadStageConfig("prod", { cwd, env: {} }));
    expect(error.fields).toEqual(["groups"]);
    expect(error.message).toContain('api is also in stage "dev"');
    expect(
      loadStageConfig("prod", { cwd, env: { AGENTFIX_CONFIG: '{"groups":["web-prod"]}' } }).groups,
    ).toEqual(["web-prod"]);
  });

  it("holds and installs nothing in a dry run: the hook continues, no association", () => {
    const config = parseStageConfig("dev", { dryRun: true, groups: ["web"] });
    expect(config.hook.defaultResult).toBe("CONTINUE");
    expect(config.association.enabled).toBe(false);
    const error = errorOf(() =>
      parseStageConfig("dev", {
        dryRun: true,
        groups: ["web"],
        hook: { defaultResult: "ABANDON" },
        association: { enabled: true },
      }),
    );
    expect(error.fields).toEqual(["hook.defaultResult", "association.enabled"]);
  });

  it("needs a pinned stage on the 2.x package to name its version, and a pin to match its package", () => {
    const unnamed = errorOf(() =>
      parseStageConfig("prod", { ...PROD, agent: { package: "AWSCodeDeployAgentV2" } }),
    );
    expect(unnamed.fields).toEqual(["agent.version"]);
    expect(unnamed.message).toContain("AWSCodeDeployAgentV2 has no default pin");
    expect(
      parseStageConfig("prod", { ...PROD, agent: { package: "AWSCodeDeployAgentV2", version: "2.1.0" } })
        .agent.version,
    ).toBe("2.1.0");
    const mismatch = errorOf(() =>
      parseStageConfig("dev", { agent: { package: "AWSCodeDeployAgentV2", version: "1.8.1" } }),
    );
    expect(mismatch.fields).toEqual(["agent.version"]);
    expect(mismatch.message).toContain("1.8.1 is not a version of AWSCodeDeployAgentV2");
  });

  it("makes a stage that reads like production or UAT choose its version explicitly", () => {
    for (const stage of ["prd", "prod-eu", "uat2"]) {
      const error = errorOf(() => parseStageConfig(stage, {}));
      expect(error.fields).toEqual(["agent.version"]);
      expect(error.message).toContain("reads like production or UAT");
    }
    expect(parseStageConfig("prod-eu", { agent: { version: "latest" } }).agent.version).toBe("");
    expect(parseStageConfig("prod-eu", { agent: { version: "1.8.1" } }).agent.version).toBe("1.8.1");
  });

  it("refuses a pinned stage that names no group", () => {
    const error = errorOf(() => parseStageConfig("prod", {}));
    expect(error.fields).toEqual(["groups"]);
    expect(error.message).toContain("must name its Auto Scaling groups");
  });

  it("reserves the launch function's concurrency for its event source", () => {
    expect(parseStageConfig("dev", {}).launch.reservedConcurrency).toBe(50);
    expect(parseStageConfig("dev", { launch: { maxConcurrency: 20 } }).launch.reservedConcurrency).toBe(20);
    const error = errorOf(() => parseStageConfig("dev", { launch: { reservedConcurrency: 10 } }));
    expect(error.fields).toEqual(["launch.reservedConcurrency"]);
    expect(parseStageConfig("dev", { launch: { reservedConcurrency: 0 } }).warnings.join("\n")).toContain(
      "launch.reservedConcurrency is 0",
    );
  });

  it("warns when deployment groups are listed without Auto Scaling groups, or the reverse", () => {
    const failureOnly = parseStageConfig("dev", { deploymentGroups: ["shop/web-dg"] }).warnings.join("\n");
    expect(failureOnly).toContain(
      "deploymentGroups lists 1 deployment group(s) but groups lists no Auto Scaling group",
    );
    const launchOnly = parseStageConfig("dev", { groups: ["web"] }).warnings.join("\n");
    expect(launchOnly).toContain("groups lists 1 Auto Scaling group(s) but deploymentGroups lists none");
    const both = parseStageConfig("dev", { groups: ["web"], deploymentGroups: ["shop/web-dg"] }).warnings;
    expect(both.join("\n")).not.toMatch(/deploymentGroups lists|groups lists/);
  });

  it("waits hours for a busy group and two minutes for a rollback by default, within bounds", () => {
    expect(parseStageConfig("dev", {}).failure).toMatchObject({
      busyGroupRetryHours: 4,
      rollbackWaitSeconds: 120,
    });
    const error = errorOf(() =>
      parseStageConfig("dev", { failure: { busyGroupRetryHours: 0, rollbackWaitSeconds: 7200 } }),
    );
    expect(error.fields.sort()).toEqual(["failure.busyGroupRetryHours", "failure.rollbackWaitSeconds"]);
  });
});
