import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadStageConfig, parseStageConfig, StageConfigError } from "../../stacks/config.js";
import { DEFAULT_PINS, defaultHookName } from "../../stacks/stage-policy.js";

const DEFAULT_PINNED_AGENT_VERSION = DEFAULT_PINS.AWSCodeDeployAgent;
const PROD = { groups: ["web-prod"] };
/** A stage must name what it acts on. */
const WEB = { groups: ["web"] };

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
    expect(parseStageConfig("dev", WEB).agent.version).toBe("");
    expect(parseStageConfig("dev", { ...WEB, agent: { version: "latest" } }).agent.version).toBe("");
    expect(parseStageConfig("dev", { ...WEB, agent: { version: "1.7.1" } }).agent.version).toBe("1.7.1");
  });

  it("refuses to leave a production stage on the latest agent", () => {
    const error = errorOf(() => parseStageConfig("prod", { ...PROD, agent: { version: "" } }));
    expect(error.fields).toEqual(["agent.version"]);
    expect(error.message).toContain('stage "prod" runs production workloads');
  });

  it("fills in every default", () => {
    const config = parseStageConfig("dev", { groups: ["web"], deploymentGroups: ["shop/web-dg"] });
    expect(config.paths).toEqual({ launch: true, failure: true });
    expect(config.dryRun).toBe(false);
    expect(config.agent).toEqual({
      package: "AWSCodeDeployAgent",
      version: "",
      installAttempts: 2,
      pollIntervalMs: 5000,
    });
    // Fail open: CONTINUE by default.
    expect(config.hook).toEqual({
      name: defaultHookName("dev"),
      previousName: "agentfix-dev-install-codedeploy-agent",
      managedBy: "stack",
      heartbeatTimeoutSeconds: 900,
      defaultResult: "CONTINUE",
    });
    expect(config.launch).toMatchObject({
      failureResult: "CONTINUE",
      completion: "events",
      timeoutSeconds: 20,
      visibilityTimeoutSeconds: 30,
      resumeAfterSeconds: 10,
      registrationPollSeconds: 10,
      commandOverdueSeconds: 60,
      batchSize: 50,
      maxBatchingWindowSeconds: 2,
      maxConcurrency: 20,
      reservedConcurrency: 20,
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
      staleAfterSeconds: 20,
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
    expect(parseStageConfig("dev", { groups: ["*"] }).hook.managedBy).toBe("group");
    expect(parseStageConfig("dev", { groups: ["web"], hook: { managedBy: "group" } }).hook.managedBy).toBe(
      "group",
    );
    const error = errorOf(() => parseStageConfig("dev", { groups: ["*"], hook: { managedBy: "stack" } }));
    expect(error.fields).toEqual(["hook.managedBy"]);
  });

  it("targets the association at the groups in scope, and creates none when nothing is named", () => {
    const scoped = parseStageConfig("dev", { groups: ["web", "api"] }).association;
    expect(scoped).toMatchObject({
      enabled: true,
      target: { key: "tag:aws:autoscaling:groupName", values: ["web", "api"] },
    });
    const unscoped = parseStageConfig("dev", { groups: ["*"] });
    expect(unscoped.association.enabled).toBe(false);
    expect(unscoped.association.target).toBeUndefined();
    expect(unscoped.warnings.join("\n")).toContain("no State Manager association is created");
    const target = { key: "tag:Name", values: ["web-server"] };
    expect(parseStageConfig("dev", { groups: ["web"], association: { target } }).association).toMatchObject({
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
    const config = parseStageConfig("dev", { groups: ["web"], launch: { completion: "polling" } });
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
      parseStageConfig("dev", { ...WEB, launch: { completion: "polling", timeoutSeconds: 450 } }),
    );
    expect(tooSlow.fields).toEqual(["launch.visibilityTimeoutSeconds"]);
    expect(tooSlow.message).toContain("must stay below hook.heartbeatTimeoutSeconds (900)");

    const tooShort = errorOf(() =>
      parseStageConfig("dev", { ...WEB, launch: { timeoutSeconds: 120, visibilityTimeoutSeconds: 100 } }),
    );
    expect(tooShort.fields).toEqual(["launch.visibilityTimeoutSeconds"]);
    expect(tooShort.message).toContain("must exceed launch.timeoutSeconds (120)");

    const fits = parseStageConfig("dev", {
      ...WEB,
      launch: { completion: "polling", timeoutSeconds: 300 },
      hook: { heartbeatTimeoutSeconds: 3600 },
    });
    expect(fits.launch.visibilityTimeoutSeconds).toBe(600);
    // Event completion: the message of a cut-off invocation is back 10 s after the function's timeout.
    expect(
      parseStageConfig("dev", { ...WEB, launch: { timeoutSeconds: 450 } }).launch.visibilityTimeoutSeconds,
    ).toBe(460);
  });

  it("requires a batching window for batches above ten messages and a sweep faster than the heartbeat", () => {
    const error = errorOf(() =>
      parseStageConfig("dev", {
        ...WEB,
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

  it("refuses a stage that names nothing it acts on, even without a configuration file", () => {
    const error = errorOf(() =>
      loadStageConfig("dev", { cwd: mkdtempSync(join(tmpdir(), "agentfix-empty-")), env: {} }),
    );
    expect(error.fields).toEqual(["groups"]);
    expect(error.message).toContain("names no groups, no deploymentGroups and no association.target");
    const config = loadStageConfig("dev", {
      cwd: mkdtempSync(join(tmpdir(), "agentfix-empty-")),
      env: { AGENTFIX_CONFIG: '{"groups":["web"]}' },
    });
    expect(config.stage).toBe("dev");
  });
});

describe("stage rules that keep a stage from harming the account", () => {
  it("gives each stage its own launch hook, and still recognises the previous release's default name", () => {
    const dev = parseStageConfig("dev", { groups: ["web"] }).hook;
    expect(dev).toMatchObject({
      name: "agentfix-dev-codedeploy-agent-hook",
      previousName: "agentfix-dev-install-codedeploy-agent",
    });
    expect(parseStageConfig("prod", PROD).hook.name).toBe("agentfix-prod-codedeploy-agent-hook");
    const own = parseStageConfig("dev", { groups: ["web"], hook: { name: "team-hook" } }).hook;
    expect(own.name).toBe("team-hook");
    expect(own.previousName).toBeUndefined();
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
    expect(config.launch.failureResult).toBe("CONTINUE");
    expect(config.association.enabled).toBe(false);
    const error = errorOf(() =>
      parseStageConfig("dev", {
        dryRun: true,
        groups: ["web"],
        hook: { defaultResult: "ABANDON" },
        launch: { failureResult: "ABANDON" },
        association: { enabled: true },
      }),
    );
    expect(error.fields).toEqual(["launch.failureResult", "hook.defaultResult", "association.enabled"]);
    // ABANDON stays a stage's explicit choice outside a dry run.
    const abandon = parseStageConfig("dev", {
      groups: ["web"],
      hook: { defaultResult: "ABANDON" },
      launch: { failureResult: "ABANDON" },
    });
    expect([abandon.hook.defaultResult, abandon.launch.failureResult]).toEqual(["ABANDON", "ABANDON"]);
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
      parseStageConfig("dev", { ...WEB, agent: { package: "AWSCodeDeployAgentV2", version: "1.8.1" } }),
    );
    expect(mismatch.fields).toEqual(["agent.version"]);
    expect(mismatch.message).toContain("1.8.1 is not a version of AWSCodeDeployAgentV2");
  });

  it("makes a stage that reads like production or UAT choose its version explicitly", () => {
    for (const stage of ["prd", "prod-eu", "uat2"]) {
      const error = errorOf(() => parseStageConfig(stage, WEB));
      expect(error.fields).toEqual(["agent.version"]);
      expect(error.message).toContain("reads like production or UAT");
    }
    expect(parseStageConfig("prod-eu", { ...WEB, agent: { version: "latest" } }).agent.version).toBe("");
    expect(parseStageConfig("prod-eu", { ...WEB, agent: { version: "1.8.1" } }).agent.version).toBe("1.8.1");
  });

  it("refuses a pinned stage that names no group, or every group", () => {
    for (const groups of [[], ["*"]]) {
      const error = errorOf(() =>
        parseStageConfig("prod", { groups, association: { target: { key: "tag:Name", values: ["w"] } } }),
      );
      expect(error.fields).toEqual(["groups"]);
      expect(error.message).toContain("must name its Auto Scaling groups");
    }
  });

  it("takes every group only for an explicit *, alone, and refuses it beside another stage's groups in the same account and Region", () => {
    expect(errorOf(() => parseStageConfig("dev", { groups: ["*", "web"] })).fields).toEqual(["groups"]);
    expect(parseStageConfig("dev", { deploymentGroups: ["*"] }).paths).toEqual({
      launch: false,
      failure: true,
    });
    const sameRegion = projectWith({ dev: { groups: ["*"] }, prod: { groups: ["web-prod"] } });
    const error = errorOf(() => loadStageConfig("dev", { cwd: sameRegion, env: {} }));
    expect(error.fields).toEqual(["groups"]);
    expect(error.message).toContain('stage "prod" names groups there too');
    expect(error.message).toContain("compared by Region only");
    const deploymentGroups = projectWith({
      dev: { deploymentGroups: ["*"] },
      prod: { groups: ["web-prod"], deploymentGroups: ["shop/web-prod"] },
    });
    expect(errorOf(() => loadStageConfig("dev", { cwd: deploymentGroups, env: {} })).fields).toEqual([
      "deploymentGroups",
    ]);
    // Another account, or another Region: no conflict.
    const apart = projectWith({
      dev: { account: "111111111111", groups: ["*"] },
      prod: { account: "222222222222", groups: ["web-prod"] },
      uat: { region: "eu-west-1", groups: ["web-uat"] },
    });
    expect(loadStageConfig("dev", { cwd: apart, env: {} }).groups).toEqual(["*"]);
  });

  it("refuses a pin that is not a full version and a rate() association schedule State Manager would refuse", () => {
    for (const version of ["1.8", "1"]) {
      const error = errorOf(() => parseStageConfig("dev", { groups: ["web"], agent: { version } }));
      expect(error.fields).toEqual(["agent.version"]);
      expect(error.message).toContain("a full version X.Y.Z");
    }
    const rate = errorOf(() =>
      parseStageConfig("dev", { groups: ["web"], association: { schedule: "rate(1 day)" } }),
    );
    expect(rate.fields).toEqual(["association.schedule"]);
    expect(rate.message).toContain("association.applyOnlyAtCronInterval");
    expect(
      parseStageConfig("dev", {
        groups: ["web"],
        association: { schedule: "rate(1 day)", applyOnlyAtCronInterval: false },
      }).association.schedule,
    ).toBe("rate(1 day)");
  });

  it("reserves the launch function's concurrency for its event source, within a share of the account", () => {
    const web = { groups: ["web"] };
    expect(parseStageConfig("dev", web).launch.reservedConcurrency).toBe(20);
    expect(
      parseStageConfig("dev", { ...web, launch: { maxConcurrency: 8 } }).launch.reservedConcurrency,
    ).toBe(8);
    const error = errorOf(() => parseStageConfig("dev", { ...web, launch: { reservedConcurrency: 10 } }));
    expect(error.fields).toEqual(["launch.reservedConcurrency"]);
    expect(
      parseStageConfig("dev", { ...web, launch: { reservedConcurrency: 0 } }).warnings.join("\n"),
    ).toContain("launch.reservedConcurrency is 0");
    expect(parseStageConfig("dev", web).warnings.join("\n")).not.toContain("share");
    expect(
      parseStageConfig("dev", { ...web, launch: { maxConcurrency: 150 } }).warnings.join("\n"),
    ).toContain("more than this stage's share of the account's default concurrency quota (100 of 1000");
  });

  it("warns when deployment groups are listed without Auto Scaling groups, or the reverse", () => {
    const failureOnly = parseStageConfig("dev", { deploymentGroups: ["shop/web-dg"] }).warnings.join("\n");
    expect(failureOnly).toContain(
      "deploymentGroups lists 1 deployment group(s) but groups lists no Auto Scaling group: no launch path is deployed",
    );
    const launchOnly = parseStageConfig("dev", { groups: ["web"] }).warnings.join("\n");
    expect(launchOnly).toContain(
      "groups lists 1 Auto Scaling group(s) but deploymentGroups lists none: no failure path is deployed",
    );
    const both = parseStageConfig("dev", { groups: ["web"], deploymentGroups: ["shop/web-dg"] }).warnings;
    expect(both.join("\n")).not.toMatch(/deploymentGroups lists|groups lists/);
  });

  it("waits hours for a busy group and two minutes for a rollback by default, within bounds", () => {
    expect(parseStageConfig("dev", { deploymentGroups: ["shop/web-dg"] }).failure).toMatchObject({
      busyGroupRetryHours: 4,
      rollbackWaitSeconds: 120,
    });
    const error = errorOf(() =>
      parseStageConfig("dev", {
        deploymentGroups: ["shop/web-dg"],
        failure: { busyGroupRetryHours: 0, rollbackWaitSeconds: 7200 },
      }),
    );
    expect(error.fields.sort()).toEqual(["failure.busyGroupRetryHours", "failure.rollbackWaitSeconds"]);
  });
});
