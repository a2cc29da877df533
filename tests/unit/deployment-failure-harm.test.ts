import {
  CreateDeploymentCommand,
  type DeploymentInfo,
  DeploymentLimitExceededException,
  type InstanceTarget,
} from "@aws-sdk/client-codedeploy";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { DescribeDocumentCommand, SendCommandCommand } from "@aws-sdk/client-ssm";
import { beforeEach, describe, expect, it } from "vitest";
import { NO_LEASE } from "../../functions/core/common/lease.js";
import { installDocumentName } from "../../functions/core/contract.js";
import {
  MAX_DELAY_SECONDS,
  RedeployDeferredError,
  retryDelaySeconds,
} from "../../functions/core/failure/retry-queue.js";
import {
  addFailure,
  addMetric,
  agentTarget,
  codeDeploy,
  event,
  failedDeployment,
  fakeCodeDeploy,
  fakeSsm,
  LATEST_AGENT,
  MINUTE,
  run,
  scriptFailedTarget,
  sqs,
  ssm,
  useFailureHarness,
} from "./support/failure-fakes.js";

/**
 * "First, do no harm" on the failure path: every instance the redeploy reaches has a current agent
 * first, blue/green deployments and rollbacks are left alone, no agent is restarted under a
 * deployment, a busy group is waited for through the retry queue, and an SSM refusal stays with its
 * instances.
 */
useFailureHarness();

const QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-failure-retry";
const INSTALL_DOCUMENT = installDocumentName("test");
const ROLLBACK_ON_FAILURE = { enabled: true, events: ["DEPLOYMENT_FAILURE" as const] };
const PREVIOUS_REVISION = {
  revisionType: "S3" as const,
  s3Location: { bucket: "artifacts", key: "web/app-41.zip", bundleType: "zip" as const, eTag: "prev41" },
};

beforeEach(() => {
  // The agent package's published version: a running 1.7.1 is outdated, a 1.8.1 is current.
  ssm.on(DescribeDocumentCommand).resolves({ Document: { VersionName: LATEST_AGENT } });
});

/** An instance CodeDeploy never reached: OneAtATime stopped at the first failed one. */
function skippedTarget(instanceId: string): InstanceTarget {
  return {
    targetId: instanceId,
    status: "Skipped",
    lifecycleEvents: ["ApplicationStop", "DownloadBundle", "ApplicationStart"].map((name) =>
      event(name, "Skipped"),
    ),
  };
}

function installsOn(...instanceIds: string[]): number {
  return instanceIds.reduce((sum, id) => sum + fakeSsm.installsOn(id), 0);
}

function documentsSentTo(instanceId: string): string[] {
  return ssm
    .commandCalls(SendCommandCommand)
    .filter((call) => call.args[0].input.InstanceIds?.includes(instanceId))
    .map((call) => call.args[0].input.DocumentName ?? "");
}

/** A deployment of the group still running (created after the failed one). */
function addRunning(deploymentId: string, fields: Partial<DeploymentInfo>, instanceIds: string[]): void {
  fakeCodeDeploy.add({
    info: { ...failedDeployment(deploymentId), status: "InProgress", createTime: new Date(), ...fields },
    targets: instanceIds.map((targetId) => ({ targetId, status: "Pending", lifecycleEvents: [] })),
  });
}

function sentRetries() {
  return sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
}

describe("10. every instance the redeploy reaches is checked and upgraded first", () => {
  it("upgrades the instances OneAtATime skipped, checks the current ones without installing, then redeploys", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    fakeSsm.add("i-0bbb", { version: "1.7.1" });
    fakeSsm.add("i-0ccc", { version: LATEST_AGENT });
    addFailure("d-ONEATIME1", [
      scriptFailedTarget("i-0aaa"),
      skippedTarget("i-0bbb"),
      skippedTarget("i-0ccc"),
    ]);

    const report = await run("d-ONEATIME1");

    expect(report.decision).toBe("REDEPLOYED");
    expect(report.upgraded).toEqual([
      { instanceId: "i-0aaa", from: "1.7.1", to: LATEST_AGENT },
      { instanceId: "i-0bbb", from: "1.7.1", to: LATEST_AGENT },
    ]);
    expect(report.alreadyCurrent).toEqual([{ instanceId: "i-0ccc", version: LATEST_AGENT }]);
    // The install document found the agent current: nothing was installed there.
    expect(documentsSentTo("i-0ccc")).toEqual([INSTALL_DOCUMENT]);
    expect(
      fakeSsm.invocations.find((item) => item.InstanceId === "i-0ccc")?.CommandPlugins?.map((p) => p.Name),
    ).toEqual(["skipIfCurrentLinux"]);
    expect(installsOn("i-0bbb")).toBe(1);
    expect(fakeCodeDeploy.created).toHaveLength(1);
  });

  it("does not redeploy an application failure because an agent CodeDeploy skipped was outdated", async () => {
    fakeSsm.add("i-0aaa", { version: LATEST_AGENT });
    fakeSsm.add("i-0bbb", { version: "1.7.1" });
    addFailure("d-APPFAIL01", [scriptFailedTarget("i-0aaa"), skippedTarget("i-0bbb")]);

    const report = await run("d-APPFAIL01");

    expect(report.decision).toBe("GAVE_UP");
    expect(report.upgraded).toEqual([{ instanceId: "i-0bbb", from: "1.7.1", to: LATEST_AGENT }]);
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });
});

describe("11. blue/green deployments are left alone", () => {
  it("skips a failed blue/green deployment with the reason, touching no agent and deploying nothing", async () => {
    fakeSsm.add("i-0grn", { version: "1.7.1" });
    addFailure("d-BLUEGRN01", [agentTarget("i-0grn")], {
      deploymentStyle: { deploymentType: "BLUE_GREEN", deploymentOption: "WITH_TRAFFIC_CONTROL" },
    });

    const report = await run("d-BLUEGRN01");

    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("blue/green deployment");
    expect(report.reason).toContain("replacement environment");
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(codeDeploy.commandCalls(CreateDeploymentCommand)).toHaveLength(0);
  });
});

describe("12. never race an automatic rollback", () => {
  it("waits for the rollback a failed deployment asked for, through the retry queue, before touching any agent", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-ROLLWAIT1", [agentTarget("i-0aaa")], {
      autoRollbackConfiguration: ROLLBACK_ON_FAILURE,
      completeTime: new Date(Date.now() - 10_000),
    });

    const report = await run("d-ROLLWAIT1", { FAILURE_RETRY_QUEUE_URL: QUEUE, ROLLBACK_WAIT_SECONDS: 120 });

    expect(report.decision).toBe("DEFERRED");
    expect(report.reason).toContain("Automatic rollback on failure is configured");
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
    const [retry] = sentRetries();
    expect(retry?.QueueUrl).toBe(QUEUE);
    expect(retry?.DelaySeconds).toBeGreaterThan(100);
    expect(retry?.DelaySeconds).toBeLessThanOrEqual(110);
    expect(JSON.parse(retry?.MessageBody ?? "{}")).toEqual({
      deploymentId: "d-ROLLWAIT1",
      firstSeenAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(addMetric).toHaveBeenCalledWith("RedeployDeferred", "Count", 1);
  });

  it("goes ahead once the wait is over and CodeDeploy created no rollback", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-NOROLLBK1", [agentTarget("i-0aaa")], { autoRollbackConfiguration: ROLLBACK_ON_FAILURE });

    const report = await run("d-NOROLLBK1", { FAILURE_RETRY_QUEUE_URL: QUEUE, ROLLBACK_WAIT_SECONDS: 30 });

    expect(report.decision).toBe("REDEPLOYED");
  });

  it("stops before restarting any agent when a deployment starts in the group while the agents are checked", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-RACE00001", [agentTarget("i-0aaa")], { autoRollbackConfiguration: ROLLBACK_ON_FAILURE });
    // CodeDeploy creates the rollback right after the function's first look at the group, while the
    // function looks at the instance's registration: the look at the group before the install sees it.
    fakeSsm.onLook = () => {
      if (fakeCodeDeploy.deployments.has("d-ROLLBK002")) return;
      addRunning(
        "d-ROLLBK002",
        { creator: "codeDeployRollback", rollbackInfo: { rollbackTriggeringDeploymentId: "d-RACE00001" } },
        ["i-0aaa"],
      );
    };

    const report = await run("d-RACE00001", { ROLLBACK_WAIT_SECONDS: 0 });

    expect(installsOn("i-0aaa")).toBe(0);
    expect(report.notUpgraded).toEqual([
      {
        instanceId: "i-0aaa",
        reason: expect.stringContaining("deployment d-ROLLBK002 started in the group"),
        reachable: true,
        busy: true,
      },
    ]);
    expect(report.decision).toBe("SKIPPED");
    expect(report.reason).toContain("Rollback d-ROLLBK002 followed d-RACE00001");
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });

  it("redeploys the revision of a rollback the agent broke, counted in the chain of the deployment it rolled back", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    const started = Date.now() - 10 * MINUTE;
    addFailure("d-RELEASE01", [agentTarget("i-0aaa")], {
      autoRollbackConfiguration: ROLLBACK_ON_FAILURE,
      rollbackInfo: { rollbackDeploymentId: "d-ROLLBK001" },
      createTime: new Date(started),
    });
    addFailure("d-ROLLBK001", [agentTarget("i-0aaa")], {
      creator: "codeDeployRollback",
      revision: PREVIOUS_REVISION,
      description: undefined,
      autoRollbackConfiguration: ROLLBACK_ON_FAILURE,
      rollbackInfo: { rollbackTriggeringDeploymentId: "d-RELEASE01" },
      createTime: new Date(started + 5 * MINUTE),
    });

    const report = await run("d-ROLLBK001");

    expect(report).toMatchObject({ decision: "REDEPLOYED", originalDeploymentId: "d-RELEASE01", attempt: 1 });
    expect(fakeCodeDeploy.created[0]).toMatchObject({
      revision: PREVIOUS_REVISION,
      description: "[agentfix test redeploy of d-RELEASE01 attempt 1]",
    });
    // The deployment that was rolled back stays rolled back.
    expect((await run("d-RELEASE01")).decision).toBe("SKIPPED");
    expect(fakeCodeDeploy.created).toHaveLength(1);
  });

  it("does not start a new chain when the rollback of a redeployment fails", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-REDEPL001", [agentTarget("i-0aaa")], {
      description: "Release 42 [agentfix redeploy of d-FIRST0001 attempt 1]",
      rollbackInfo: { rollbackDeploymentId: "d-ROLLBK003" },
    });
    addFailure("d-ROLLBK003", [agentTarget("i-0aaa")], {
      creator: "codeDeployRollback",
      revision: PREVIOUS_REVISION,
      description: undefined,
      rollbackInfo: { rollbackTriggeringDeploymentId: "d-REDEPL001" },
    });

    const report = await run("d-ROLLBK003", { MAX_REDEPLOYS: 1 });

    expect(report).toMatchObject({ decision: "GAVE_UP", originalDeploymentId: "d-FIRST0001", attempt: 2 });
    expect(fakeCodeDeploy.created).toHaveLength(0);
  });
});

describe("13. a busy group is waited for, for hours", () => {
  it("defers through the retry queue while another deployment runs in the group, touching no agent", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-BUSY00001", [agentTarget("i-0aaa")]);
    addRunning("d-LAUNCH001", { creator: "autoscaling" }, ["i-0new"]);

    const report = await run("d-BUSY00001", { FAILURE_RETRY_QUEUE_URL: QUEUE });

    expect(report.decision).toBe("DEFERRED");
    expect(report.reason).toContain("deployment d-LAUNCH001 is running in web-app/web-dg");
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(0);
    expect(sentRetries()).toEqual([expect.objectContaining({ QueueUrl: QUEUE, DelaySeconds: 60 })]);

    // The launch deployment ends: the retry message brings the failure back and it is redeployed.
    const launch = fakeCodeDeploy.deployments.get("d-LAUNCH001");
    if (launch) launch.info = { ...launch.info, status: "Succeeded" };
    const retry = await run(
      "d-BUSY00001",
      { FAILURE_RETRY_QUEUE_URL: QUEUE },
      NO_LEASE,
      Date.now() - 20 * MINUTE,
    );
    expect(retry.decision).toBe("REDEPLOYED");
  });

  it("defers when CreateDeployment finds the group busy after the upgrade", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LIMIT0002", [agentTarget("i-0aaa")]);
    fakeCodeDeploy.limitExceeded = true;

    const report = await run("d-LIMIT0002", { FAILURE_RETRY_QUEUE_URL: QUEUE });

    expect(report.decision).toBe("DEFERRED");
    expect(report.reason).toContain("already has an active deployment");
    expect(report.upgraded).toEqual([{ instanceId: "i-0aaa", from: "1.7.1", to: LATEST_AGENT }]);
    expect(sentRetries()).toHaveLength(1);
  });

  it("gives up, as a decision and not an error, once the group has been busy longer than BUSY_GROUP_RETRY_HOURS", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-BUSYLONG1", [agentTarget("i-0aaa")]);
    addRunning("d-LONGRUN01", { creator: "autoscaling" }, ["i-0new"]);

    const report = await run(
      "d-BUSYLONG1",
      { FAILURE_RETRY_QUEUE_URL: QUEUE, BUSY_GROUP_RETRY_HOURS: 4 },
      NO_LEASE,
      Date.now() - 5 * 3_600_000,
    );

    expect(report.decision).toBe("GAVE_UP");
    expect(report.reason).toContain("longer than BUSY_GROUP_RETRY_HOURS (4 h)");
    expect(sentRetries()).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith("RedeployGaveUp", "Count", 1);
  });

  it("says in a dry run that it would wait, and sends nothing to the retry queue", async () => {
    addFailure("d-DRYBUSY01", [agentTarget("i-0aaa")]);
    addRunning("d-LAUNCH003", { creator: "autoscaling" }, ["i-0new"]);

    const report = await run("d-DRYBUSY01", { FAILURE_RETRY_QUEUE_URL: QUEUE, DRY_RUN: true });

    expect(report.decision).toBe("DRY_RUN");
    expect(report.reason).toContain("would wait and look again: deployment d-LAUNCH003 is running");
    expect(sentRetries()).toHaveLength(0);
  });

  it("leaves the wait to Lambda's retries when no retry queue is configured", async () => {
    addFailure("d-NOQUEUE01", [agentTarget("i-0aaa")]);
    addRunning("d-LAUNCH002", { creator: "autoscaling" }, ["i-0new"]);

    await expect(run("d-NOQUEUE01")).rejects.toBeInstanceOf(RedeployDeferredError);
  });

  it("looks again after a minute at first and waits longer as the wait grows, up to SQS's fifteen minutes", () => {
    expect(retryDelaySeconds(0)).toBe(60);
    expect(retryDelaySeconds(10 * MINUTE)).toBe(300);
    expect(retryDelaySeconds(3 * 3_600_000)).toBe(MAX_DELAY_SECONDS);
  });

  it("keeps the AWS error as the cause when CreateDeployment refuses and no queue is configured", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LIMIT0003", [agentTarget("i-0aaa")]);
    fakeCodeDeploy.limitExceeded = true;

    const failure = await run("d-LIMIT0003").catch((error: unknown) => error);

    expect((failure as Error).cause).toBeInstanceOf(DeploymentLimitExceededException);
  });
});

describe("14. an SSM refusal stays with its instances", () => {
  it("reports the instance SSM refused, still upgrades the others of its command, and redeploys nothing that would reach the refused one", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    fakeSsm.add("i-0out", { version: "1.7.1" });
    fakeSsm.denied.add("i-0out");
    addFailure("d-DENIED001", [agentTarget("i-0aaa"), agentTarget("i-0out")]);

    const report = await run("d-DENIED001");

    expect(report.upgraded).toEqual([{ instanceId: "i-0aaa", from: "1.7.1", to: LATEST_AGENT }]);
    expect(report.notUpgraded).toEqual([
      { instanceId: "i-0out", reason: expect.stringContaining("AccessDeniedException"), reachable: true },
    ]);
    // The redeploy would reach i-0out's outdated agent and fail again there.
    expect(report.decision).toBe("GAVE_UP");
    expect(report.reason).toContain("could not be brought current: i-0out");
    expect(codeDeploy.commandCalls(CreateDeploymentCommand)).toHaveLength(0);
  });

  it("reports every instance of the command when the refusal names none, and redeploys nothing", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    fakeSsm.add("i-0bbb", { version: "1.7.1" });
    fakeSsm.add("i-0ccc", { version: "1.7.1" });
    addFailure("d-DENIED002", [
      scriptFailedTarget("i-0aaa"),
      skippedTarget("i-0bbb"),
      skippedTarget("i-0ccc"),
    ]);
    // The install command is refused without naming an instance: it stays with all of them.
    fakeSsm.denied.add("i-0bbb");
    fakeSsm.anonymousDenial = true;

    const report = await run("d-DENIED002");

    expect(report.upgraded).toEqual([]);
    expect(report.notUpgraded.map((item) => item.instanceId).sort()).toEqual(["i-0aaa", "i-0bbb", "i-0ccc"]);
    expect(report.notUpgraded[0]?.reason).toContain("not authorized to perform: ssm:SendCommand");
    expect(report.decision).toBe("GAVE_UP");
  });
});

describe("a group that turns busy during the upgrade", () => {
  it("defers the failure, instead of giving up, when a launch deployment starts while the agents are checked", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-LAUNCHED1", [scriptFailedTarget("i-0aaa")]);
    // The group scales out right after the function's first look: a launch deployment starts.
    fakeSsm.onLook = () => {
      if (fakeCodeDeploy.deployments.has("d-LAUNCH002")) return;
      addRunning("d-LAUNCH002", { creator: "autoscaling" }, ["i-0new"]);
    };

    const report = await run("d-LAUNCHED1", { ROLLBACK_WAIT_SECONDS: 0, FAILURE_RETRY_QUEUE_URL: QUEUE });

    expect(installsOn("i-0aaa")).toBe(0);
    expect(report.decision).toBe("DEFERRED");
    expect(report.reason).toContain("d-LAUNCH002");
  });
});
