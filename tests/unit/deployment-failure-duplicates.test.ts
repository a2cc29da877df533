import { CreateDeploymentCommand } from "@aws-sdk/client-codedeploy";
import { ConditionalCheckFailedException, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { dynamoLease, type Lease } from "../../functions/core/common/lease.js";
import { repairRetryBatch } from "../../functions/core/failure/retry-queue.js";
import {
  DeploymentLeaseHeldError,
  type FailureReport,
  repairFailedDeployment,
} from "../../functions/core/failure/run.js";
import {
  addFailure,
  addMetric,
  agentTarget,
  codeDeploy,
  config,
  dynamodb,
  fakeCodeDeploy,
  fakeSsm,
  MINUTE,
  run,
  sqs,
  useFailureHarness,
} from "./support/failure-fakes.js";

/**
 * A duplicate failure event (or Lambda's async retry, or a retry message) that arrives while another
 * invocation holds the deployment's lease, during a long upgrade, waits on the failure retry queue
 * instead of failing its way to the failure dead-letter queue and its alarm.
 */
useFailureHarness();

const QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-test-failure-retry";

function sentRetries() {
  return sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
}

/** The lease table says another invocation holds every key. */
function leaseHeldByAnother(): Lease {
  dynamodb
    .on(PutItemCommand)
    .rejects(
      new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} }),
    );
  return dynamoLease("agentfix-test-leases");
}

/** An in-memory lease table with the conditional write of dynamoLease, for invocations that overlap. */
function memoryLease(): Lease {
  const held = new Map<string, { holder: string; until: number }>();
  return {
    async acquire(key, holder, until) {
      const current = held.get(key);
      if (current && current.holder !== holder && current.until >= Date.now()) return false;
      // A lease shortened to now is given back.
      if (until <= Date.now()) held.delete(key);
      else held.set(key, { holder, until });
      return true;
    },
    async release(key, holder) {
      if (held.get(key)?.holder === holder) held.delete(key);
    },
  };
}

describe("a duplicate failure waits while another invocation holds the deployment's lease", () => {
  it("defers through the retry queue, touching no agent and deploying nothing", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUPLEASE1", [agentTarget("i-0aaa")]);
    const before = Date.now();

    const report = await run("d-DUPLEASE1", { FAILURE_RETRY_QUEUE_URL: QUEUE }, leaseHeldByAnother());

    expect(report.decision).toBe("DEFERRED");
    expect(report.reason).toContain("Another invocation holds the lease deployment#d-DUPLEASE1");
    expect(report.reason).toContain("looking again in 60 s");
    const [retry] = sentRetries();
    expect(retry).toMatchObject({ QueueUrl: QUEUE, DelaySeconds: 60 });
    const body = JSON.parse(retry?.MessageBody ?? "{}");
    expect(body.deploymentId).toBe("d-DUPLEASE1");
    expect(Date.parse(body.firstSeenAt)).toBeGreaterThanOrEqual(before);
    expect(fakeSsm.installs).toBe(0);
    expect(fakeCodeDeploy.created).toHaveLength(0);
    expect(addMetric).toHaveBeenCalledWith("RedeployDeferred", "Count", 1);
  });

  it("keeps the time the failure was first seen and looks again later as the wait grows", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUPLEASE2", [agentTarget("i-0aaa")]);
    const firstSeenAt = Date.now() - 20 * MINUTE;

    const report = await run(
      "d-DUPLEASE2",
      { FAILURE_RETRY_QUEUE_URL: QUEUE },
      leaseHeldByAnother(),
      firstSeenAt,
    );

    expect(report.decision).toBe("DEFERRED");
    const [retry] = sentRetries();
    expect(retry?.DelaySeconds).toBe(600);
    expect(JSON.parse(retry?.MessageBody ?? "{}").firstSeenAt).toBe(new Date(firstSeenAt).toISOString());
  });

  it("throws as before once the failure has waited longer than BUSY_GROUP_RETRY_HOURS", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUPLEASE3", [agentTarget("i-0aaa")]);

    const late = run(
      "d-DUPLEASE3",
      { FAILURE_RETRY_QUEUE_URL: QUEUE, BUSY_GROUP_RETRY_HOURS: 4 },
      leaseHeldByAnother(),
      Date.now() - 5 * 60 * MINUTE,
    );

    await expect(late).rejects.toBeInstanceOf(DeploymentLeaseHeldError);
    expect(sentRetries()).toHaveLength(0);
  });

  it("throws as before when no retry queue is configured", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUPLEASE4", [agentTarget("i-0aaa")]);

    await expect(run("d-DUPLEASE4", {}, leaseHeldByAnother())).rejects.toBeInstanceOf(
      DeploymentLeaseHeldError,
    );
    expect(sentRetries()).toHaveLength(0);
  });

  it("a retry record that finds the lease held is deferred, not failed towards the dead-letter queue", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUPLEASE5", [agentTarget("i-0aaa")]);
    const lease = leaseHeldByAnother();
    const body = JSON.stringify({ deploymentId: "d-DUPLEASE5", firstSeenAt: new Date().toISOString() });

    const batch = await repairRetryBatch(
      { Records: [{ messageId: "m-1", receiptHandle: "h-1", body, eventSource: "aws:sqs" }] },
      (input, messageId) =>
        repairFailedDeployment(
          {
            deploymentId: input.deploymentId,
            requestId: messageId,
            deadline: Date.now() + 5 * MINUTE,
            ...(input.firstSeenAt !== undefined ? { firstSeenAt: input.firstSeenAt } : {}),
          },
          { config: config({ FAILURE_RETRY_QUEUE_URL: QUEUE }), lease },
        ),
    );

    expect(batch.batchItemFailures).toEqual([]);
    expect(batch.deployments).toEqual([expect.objectContaining({ decision: "DEFERRED" })]);
    expect(sentRetries()).toHaveLength(1);
  });

  it("a duplicate event during a long upgrade waits, then finds the redeployment the first one made", async () => {
    fakeSsm.add("i-0aaa", { version: "1.7.1" });
    addFailure("d-DUPLEASE6", [agentTarget("i-0aaa")]);
    const table = memoryLease();
    let duplicate: Promise<FailureReport> | undefined;
    const lease: Lease = {
      // The first invocation gives its lease back (a lease shortened to now) only once the duplicate
      // has looked, so the duplicate surely finds it held.
      async acquire(key, holder, until) {
        if (holder === "req-first" && until <= Date.now()) await duplicate;
        return table.acquire(key, holder, until);
      },
      release: (key, holder) => table.release(key, holder),
    };
    const settings = config({ FAILURE_RETRY_QUEUE_URL: QUEUE });
    const invoke = (requestId: string) =>
      repairFailedDeployment(
        { deploymentId: "d-DUPLEASE6", requestId, deadline: Date.now() + 5 * MINUTE },
        { config: settings, lease },
      );
    // The same FAILURE event is delivered again while the first invocation upgrades the agent.
    fakeSsm.onSend = () => {
      duplicate ??= invoke("req-duplicate");
    };

    const first = await invoke("req-first");
    const second = await duplicate;

    expect(first.decision).toBe("REDEPLOYED");
    expect(second?.decision).toBe("DEFERRED");
    expect(sentRetries()).toHaveLength(1);
    // The retry message comes back once the first is done: it finds the redeployment.
    const retry = await invoke("m-retry");
    expect(retry).toMatchObject({ decision: "SKIPPED", redeploymentId: first.redeploymentId });
    expect(codeDeploy.commandCalls(CreateDeploymentCommand)).toHaveLength(1);
    expect(fakeSsm.installsOn("i-0aaa")).toBe(1);
  });
});
