import {
  BatchGetDeploymentInstancesCommand,
  BatchGetDeploymentTargetsCommand,
  CodeDeployClient,
  CreateDeploymentCommand,
  type CreateDeploymentInput,
  type DeploymentInfo,
  DeploymentLimitExceededException,
  GetDeploymentCommand,
  type InstanceTarget,
  InvalidDeploymentIdException,
  type LifecycleEvent,
  ListDeploymentInstancesCommand,
  ListDeploymentsCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import { ConditionalCheckFailedException, DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import {
  type CommandInvocation,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { clearVersionCache } from "../../functions/core/agent/versions.js";
import { dynamoLease, type Lease, NO_LEASE } from "../../functions/core/common/lease.js";
import { metrics } from "../../functions/core/common/powertools.js";
import { defaultFailureConfig, type FailureConfig } from "../../functions/core/config.js";
import { agentDocumentNames } from "../../functions/core/contract.js";
import { RedeployDeferredError } from "../../functions/core/failure/redeploy.js";
import {
  DeploymentLeaseHeldError,
  type FailureReport,
  repairFailedDeployment,
} from "../../functions/core/failure/run.js";

/**
 * The failure path end to end against stateful stand-ins for CodeDeploy and SSM (aws-sdk-client-mock):
 * the real agent engine runs, so upgrades are SendCommand / ListCommandInvocations round trips.
 */
const codeDeploy = mockClient(CodeDeployClient);
const ssm = mockClient(SSMClient);
const dynamodb = mockClient(DynamoDBClient);

const APP = "web-app";
const GROUP = "web-dg";
const LATEST_AGENT = "1.8.1";
const OUR_INSTALL_DOCUMENT = agentDocumentNames("test").install;
const MINUTE = 60_000;

const REVISION = {
  revisionType: "S3" as const,
  s3Location: { bucket: "artifacts", key: "web/app-42.zip", bundleType: "zip" as const, eTag: "abc123" },
};

// --- CodeDeploy stand-in ----------------------------------------------------------------------

interface FakeDeployment {
  info: DeploymentInfo;
  targets: InstanceTarget[];
  /** ListDeploymentTargets answers InvalidDeploymentIdException; the instances API still works. */
  targetsUnavailable?: boolean;
  /** ListDeploymentTargets answers an empty list; the instances API still lists the instances. */
  targetsEmpty?: boolean;
}

class FakeCodeDeploy {
  readonly deployments = new Map<string, FakeDeployment>();
  readonly created: CreateDeploymentInput[] = [];
  limitExceeded = false;
  private counter = 0;

  constructor() {
    codeDeploy.on(GetDeploymentCommand).callsFake(({ deploymentId }) => {
      const deployment = this.deployments.get(deploymentId);
      if (!deployment)
        throw new InvalidDeploymentIdException({ message: "no such deployment", $metadata: {} });
      return { deploymentInfo: deployment.info };
    });
    codeDeploy.on(ListDeploymentsCommand).callsFake((input) => {
      const start: Date | undefined = input.createTimeRange?.start;
      const statuses: string[] | undefined = input.includeOnlyStatuses;
      const ids = [...this.deployments.values()]
        .filter(({ info }) => info.applicationName === input.applicationName)
        .filter(({ info }) => info.deploymentGroupName === input.deploymentGroupName)
        .filter(({ info }) => !start || (info.createTime?.getTime() ?? 0) >= start.getTime())
        .filter(({ info }) => !statuses || statuses.includes(info.status ?? ""))
        .sort((a, b) => (b.info.createTime?.getTime() ?? 0) - (a.info.createTime?.getTime() ?? 0))
        .map(({ info }) => info.deploymentId ?? "");
      return page(ids, input.nextToken, 10, (deployments, nextToken) => ({ deployments, nextToken }));
    });
    codeDeploy.on(ListDeploymentTargetsCommand).callsFake((input) => {
      const deployment = this.require(input.deploymentId);
      if (deployment.targetsUnavailable) {
        throw new InvalidDeploymentIdException({ message: "targets unavailable", $metadata: {} });
      }
      const ids = deployment.targetsEmpty
        ? []
        : this.filteredTargets(deployment, input.targetFilters?.TargetStatus);
      return page(ids, input.nextToken, 20, (targetIds, nextToken) => ({ targetIds, nextToken }));
    });
    codeDeploy.on(BatchGetDeploymentTargetsCommand).callsFake((input) => {
      if (input.targetIds.length > 25) throw new Error("BatchGetDeploymentTargets takes at most 25 ids");
      const deployment = this.require(input.deploymentId);
      return {
        deploymentTargets: deployment.targets
          .filter((target) => input.targetIds.includes(target.targetId))
          .map((instanceTarget) => ({ deploymentTargetType: "InstanceTarget", instanceTarget })),
      };
    });
    codeDeploy.on(ListDeploymentInstancesCommand).callsFake((input) => {
      const deployment = this.require(input.deploymentId);
      const ids = this.filteredTargets(deployment, input.instanceStatusFilter);
      return page(ids, input.nextToken, 20, (instancesList, nextToken) => ({ instancesList, nextToken }));
    });
    codeDeploy.on(BatchGetDeploymentInstancesCommand).callsFake((input) => {
      if (input.instanceIds.length > 25) throw new Error("BatchGetDeploymentInstances takes at most 25 ids");
      const deployment = this.require(input.deploymentId);
      return {
        instancesSummary: deployment.targets
          .filter((target) => input.instanceIds.includes(target.targetId))
          .map((target) => ({
            deploymentId: input.deploymentId,
            instanceId: `arn:aws:ec2:us-east-1:123456789012:instance/${target.targetId}`,
            status: target.status,
            lifecycleEvents: target.lifecycleEvents,
          })),
      };
    });
    codeDeploy.on(CreateDeploymentCommand).callsFake((input: CreateDeploymentInput) => {
      if (this.limitExceeded) {
        throw new DeploymentLimitExceededException({
          message: "The deployment group web-dg already has an active deployment",
          $metadata: {},
        });
      }
      this.counter += 1;
      const deploymentId = `d-REDEPLOY${this.counter}`;
      this.created.push(input);
      this.add({
        info: {
          ...input,
          deploymentId,
          status: "Created",
          creator: "user",
          createTime: new Date(),
          computePlatform: "Server",
        },
        targets: [],
      });
      return { deploymentId };
    });
  }

  add(deployment: FakeDeployment): void {
    this.deployments.set(deployment.info.deploymentId ?? "", deployment);
  }

  /** The redeployment this service created fails too (as a user deployment of the same revision). */
  fail(deploymentId: string, targets: InstanceTarget[]): void {
    const deployment = this.require(deploymentId);
    deployment.info = {
      ...deployment.info,
      status: "Failed",
      completeTime: new Date(),
      errorInformation: { code: "HEALTH_CONSTRAINTS", message: "too many individual instances failed" },
    };
    deployment.targets = targets.map((target) => ({ ...target, deploymentId }));
  }

  private require(deploymentId: string): FakeDeployment {
    const deployment = this.deployments.get(deploymentId);
    if (!deployment) throw new InvalidDeploymentIdException({ message: "no such deployment", $metadata: {} });
    return deployment;
  }

  private filteredTargets(deployment: FakeDeployment, statuses: string[] | undefined): string[] {
    return deployment.targets
      .filter((target) => !statuses || statuses.includes(target.status ?? ""))
      .map((target) => target.targetId ?? "");
  }
}

function page<T, R>(
  items: T[],
  token: string | undefined,
  size: number,
  shape: (items: T[], next?: string) => R,
): R {
  const start = token ? Number(token) : 0;
  const next = start + size < items.length ? String(start + size) : undefined;
  return shape(items.slice(start, start + size), next);
}

// --- SSM stand-in ----------------------------------------------------------------------------

interface FakeInstance {
  /** "Online" answers commands; "ConnectionLost" is listed but cannot; "absent" is stopped or terminated. */
  ssm: "Online" | "ConnectionLost" | "absent";
  version: string;
  running: boolean;
}

class FakeSsm {
  readonly instances = new Map<string, FakeInstance>();
  readonly invocations: (CommandInvocation & { CommandId: string; InstanceId: string })[] = [];
  private counter = 0;

  constructor() {
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => {
      const ids: string[] = input.Filters?.[0]?.Values ?? [];
      return {
        InstanceInformationList: ids
          .filter((id) => this.instances.has(id) && this.instances.get(id)?.ssm !== "absent")
          .map((id) => ({ InstanceId: id, PingStatus: this.instances.get(id)?.ssm, PlatformType: "Linux" })),
      };
    });
    ssm.on(SendCommandCommand).callsFake((input) => {
      this.counter += 1;
      const commandId = `00000000-0000-0000-0000-${String(this.counter).padStart(12, "0")}`;
      for (const instanceId of input.InstanceIds as string[]) {
        const instance = this.instances.get(instanceId);
        if (instance?.ssm !== "Online") throw new Error(`command sent to unreachable ${instanceId}`);
        let output = "";
        let status = "Success";
        const expected = input.Parameters?.expectedVersion?.[0] ?? "";
        const line = (prefix: "BEFORE" | "AGENT") => {
          const state = instance.running ? "running" : instance.version ? "stopped" : "missing";
          const version = instance.version ? `OFFICIAL_${instance.version}-1_rpm` : "";
          return `AGENTFIX_${prefix}_STATUS=${state} AGENTFIX_${prefix}_VERSION=${version}`;
        };
        if (input.DocumentName === OUR_INSTALL_DOCUMENT) {
          output = `${line("BEFORE")}\n`;
          if (expected && instance.running && instance.version.startsWith(expected)) {
            output += `AGENTFIX_ALREADY_CURRENT=${instance.version}\n`;
          } else {
            instance.version = input.Parameters?.version?.[0] || LATEST_AGENT;
            instance.running = true;
            output += `${line("AGENT")}\n`;
          }
        } else {
          output = line("AGENT");
          if (!instance.running) status = "Failed";
        }
        this.invocations.push({
          CommandId: commandId,
          InstanceId: instanceId,
          DocumentName: input.DocumentName,
          Comment: input.Comment,
          RequestedDateTime: new Date(),
          Status: status as "Success",
          StatusDetails: status,
          CommandPlugins: [{ Name: "aws:runShellScript", Status: status as "Success", Output: output }],
        });
      }
      return { Command: { CommandId: commandId } };
    });
    ssm.on(ListCommandInvocationsCommand).callsFake((input) => {
      let found = this.invocations;
      if (input.CommandId) found = found.filter((item) => item.CommandId === input.CommandId);
      for (const filter of input.Filters ?? []) {
        if (filter.key === "DocumentName") found = found.filter((item) => item.DocumentName === filter.value);
        if (filter.key === "InvokedAfter") {
          const after = Date.parse(filter.value);
          found = found.filter((item) => (item.RequestedDateTime?.getTime() ?? 0) >= after);
        }
      }
      const shown = found.map((item) => (input.Details ? item : { ...item, CommandPlugins: undefined }));
      return page(shown, input.NextToken, 50, (CommandInvocations, NextToken) => ({
        CommandInvocations,
        NextToken,
      }));
    });
  }

  add(instanceId: string, instance: Partial<FakeInstance> = {}): void {
    this.instances.set(instanceId, { ssm: "Online", version: "1.7.1", running: true, ...instance });
  }

  installsOn(instanceId: string): number {
    return this.invocations.filter(
      (item) => item.InstanceId === instanceId && item.DocumentName === OUR_INSTALL_DOCUMENT,
    ).length;
  }

  get installs(): number {
    return this.invocations.filter((item) => item.DocumentName === OUR_INSTALL_DOCUMENT).length;
  }
}

// --- fixtures (shapes from the CodeDeploy API reference: DeploymentInfo, InstanceTarget) ------

const AGENT_NOT_REACHED =
  "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy agent logs on your host and make sure the agent is running and can connect to the CodeDeploy server.";

function failedDeployment(deploymentId: string, overrides: Partial<DeploymentInfo> = {}): DeploymentInfo {
  const now = Date.now();
  return {
    applicationName: APP,
    deploymentGroupName: GROUP,
    deploymentConfigName: "CodeDeployDefault.OneAtATime",
    deploymentId,
    revision: REVISION,
    status: "Failed",
    errorInformation: {
      code: "HEALTH_CONSTRAINTS",
      message: "The overall deployment failed because too many individual instances failed deployment",
    },
    createTime: new Date(now - 10 * MINUTE),
    startTime: new Date(now - 10 * MINUTE),
    completeTime: new Date(now - MINUTE),
    description: "Release 42 of the web tier",
    creator: "user",
    ignoreApplicationStopFailures: true,
    fileExistsBehavior: "OVERWRITE",
    autoRollbackConfiguration: { enabled: false, events: ["DEPLOYMENT_FAILURE"] },
    updateOutdatedInstancesOnly: false,
    deploymentStyle: { deploymentType: "IN_PLACE", deploymentOption: "WITHOUT_TRAFFIC_CONTROL" },
    computePlatform: "Server",
    ...overrides,
  };
}

function event(
  name: string,
  status: LifecycleEvent["status"],
  errorCode?: string,
  message?: string,
): LifecycleEvent {
  return {
    lifecycleEventName: name,
    status,
    ...(errorCode
      ? { diagnostics: { errorCode: errorCode as "ScriptFailed", message, scriptName: "" } }
      : {}),
  };
}

/** The morning story: the tomcat start script fails under an old agent. */
function scriptFailedTarget(instanceId: string): InstanceTarget {
  return {
    targetId: instanceId,
    status: "Failed",
    lifecycleEvents: [
      event("ApplicationStop", "Succeeded"),
      event("DownloadBundle", "Succeeded"),
      event("BeforeInstall", "Succeeded"),
      event("Install", "Succeeded"),
      event("AfterInstall", "Succeeded"),
      event(
        "ApplicationStart",
        "Failed",
        "ScriptFailed",
        "Script at specified location: scripts/start_tomcat.sh run as user root failed with exit code 1",
      ),
      event("ValidateService", "Skipped"),
    ],
  };
}

function agentTarget(instanceId: string): InstanceTarget {
  return {
    targetId: instanceId,
    status: "Failed",
    lifecycleEvents: [
      event("ApplicationStop", "Failed", "UnknownError", AGENT_NOT_REACHED),
      event("DownloadBundle", "Skipped"),
    ],
  };
}

// --- harness ---------------------------------------------------------------------------------

let fakeCodeDeploy: FakeCodeDeploy;
let fakeSsm: FakeSsm;
let addMetric: MockInstance<typeof metrics.addMetric>;

const config = (overrides: Partial<FailureConfig> = {}): FailureConfig =>
  defaultFailureConfig({ POLL_INTERVAL_MS: 1, REGISTRATION_TIMEOUT_SECONDS: 0, ...overrides });

function run(deploymentId: string, overrides: Partial<FailureConfig> = {}, lease: Lease = NO_LEASE) {
  return repairFailedDeployment(
    { deploymentId, requestId: "req-1", deadline: Date.now() + 5 * MINUTE },
    { config: config(overrides), lease },
  );
}

function addFailure(
  deploymentId: string,
  targets: InstanceTarget[],
  overrides: Partial<DeploymentInfo> = {},
) {
  fakeCodeDeploy.add({
    info: failedDeployment(deploymentId, overrides),
    targets: targets.map((target) => ({ ...target, deploymentId })),
  });
}

beforeEach(() => {
  codeDeploy.reset();
  ssm.reset();
  dynamodb.reset();
  fakeCodeDeploy = new FakeCodeDeploy();
  fakeSsm = new FakeSsm();
  clearVersionCache();
  addMetric = vi.spyOn(metrics, "addMetric");
});

afterEach(() => {
  vi.restoreAllMocks();
});

function metricNames(): string[] {
  return addMetric.mock.calls.map((call) => String(call[0]));
}

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
      description: "Release 42 of the web tier [agentfix redeploy of d-AGENT0001 attempt 1]",
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
    ["it is a rollback", { creator: "codeDeployRollback" as const }, "creator codeDeployRollback"],
    [
      "it is an automatic update of outdated instances",
      { creator: "CodeDeployAutoUpdate" as const },
      "creator CodeDeployAutoUpdate",
    ],
    [
      "a rollback is already under way",
      { rollbackInfo: { rollbackDeploymentId: "d-ROLLBACK1", rollbackMessage: "rolled back" } },
      "Rollback d-ROLLBACK1 of d-SKIP00001 is already under way",
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
      "Release 42 of the web tier [agentfix redeploy of d-CHAIN0001 attempt 2]",
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

  it("rethrows DeploymentLimitExceededException so the invocation is retried, and the retry still redeploys", async () => {
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

  it("never upgrades an agent on an instance a running deployment covers", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    fakeSsm.add("i-0bbb", { version: "1.7.1" });
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

    const report = await run("d-BUSY00001");

    expect(fakeSsm.installsOn("i-0bbb")).toBe(0);
    expect(fakeSsm.installsOn("i-0aaa")).toBe(1);
    expect(report.notUpgraded).toEqual([
      {
        instanceId: "i-0bbb",
        reason: expect.stringContaining("deployment d-RUNNING01 is running on it"),
      },
    ]);
    expect(report.decision).toBe("REDEPLOYED");
  });

  it("reads more than 25 failed instances in pages and batches of 25", async () => {
    const ids = Array.from({ length: 30 }, (_, index) => `i-${String(index).padStart(4, "0")}`);
    for (const id of ids) fakeSsm.add(id, { version: "1.7.1" });
    addFailure("d-MANY00001", ids.map(agentTarget));

    const report = await run("d-MANY00001");

    expect(report.failedTargets.map((target) => target.instanceId)).toEqual(ids);
    expect(
      codeDeploy.commandCalls(ListDeploymentTargetsCommand, { deploymentId: "d-MANY00001" }),
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
