import { readFileSync } from "node:fs";
import {
  CodeDeployClient,
  GetDeploymentCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EventValidationError } from "../../functions/core/common/errors.js";
import type { FailureReport } from "../../functions/core/failure/run.js";
import type { FailureBatchReport } from "../../functions/deployment-failure.js";
import {
  parseDeploymentFailureInput,
  parseFailureRetryMessage,
} from "../../functions/schemas/deployment-failure.js";

const codeDeploy = mockClient(CodeDeployClient);

const CONTEXT = {
  functionName: "deployment-failure",
  awsRequestId: "req-1",
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

const readJson = (path: string): unknown => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const AWS_SAMPLE = readJson("../events/codedeploy-deployment-state-change.FAILURE.derived.json");
const CONSOLE_EVENT = readJson("../../events/deployment-failure.eventbridge.json");
const CONSOLE_REPLAY = readJson("../../events/deployment-failure.replay.json");

let invoke: (event: unknown, context: Context) => Promise<FailureReport | FailureBatchReport>;

/** One failure in, one report out. */
async function handler(event: unknown, context: Context): Promise<FailureReport> {
  const report = await invoke(event, context);
  if (!("decision" in report)) throw new Error("expected a single report, got a batch report");
  return report;
}

/** A retry-queue batch in, a batch report out. */
async function batchHandler(event: unknown): Promise<FailureBatchReport> {
  const report = await invoke(event, CONTEXT);
  if ("decision" in report) throw new Error("expected a batch report, got a single report");
  return report;
}

beforeAll(async () => {
  // The handler reads its configuration once, when its module loads.
  process.env.TARGET_DEPLOYMENT_GROUPS = "web-app/web-dg";
  process.env.MAX_REDEPLOYS = "1";
  process.env.REDEPLOY_WHEN = "agent-changed";
  process.env.DRY_RUN = "false";
  process.env.LEASE_TABLE = "";
  ({ handler: invoke } = await import("../../functions/deployment-failure.js"));
});

beforeEach(() => {
  codeDeploy.reset();
  codeDeploy.on(GetDeploymentCommand).callsFake(({ deploymentId }) => ({
    deploymentInfo: {
      deploymentId,
      applicationName: "web-app",
      deploymentGroupName: "web-dg",
      status: "Succeeded",
      creator: "user",
      computePlatform: "Server",
    },
  }));
});

describe("deployment-failure handler", () => {
  it("handles the raw EventBridge failure event an operator pastes into the console", async () => {
    const report = await handler(CONSOLE_EVENT, CONTEXT);

    expect(codeDeploy.commandCalls(GetDeploymentCommand)[0]?.args[0].input).toEqual({
      deploymentId: "d-ABCDEF123",
    });
    expect(report).toMatchObject({ deploymentId: "d-ABCDEF123", decision: "SKIPPED" });
    expect(report.reason).toContain("is Succeeded, not Failed");
  });

  it("handles the event shape AWS documents", async () => {
    const report = await handler(AWS_SAMPLE, CONTEXT);
    expect(report.deploymentId).toBe("d-123456789");
  });

  it("reaches the same decision for a replay payload as for the event", async () => {
    const fromEvent = await handler(CONSOLE_EVENT, CONTEXT);
    const fromReplay = await handler(CONSOLE_REPLAY, CONTEXT);
    expect({ ...fromReplay, elapsedSeconds: 0 }).toEqual({ ...fromEvent, elapsedSeconds: 0 });
  });

  it("rejects a malformed event with one error naming every bad field, before any AWS call", async () => {
    const broken = {
      ...(CONSOLE_EVENT as object),
      source: "aws.ec2",
      detail: { application: "web-app", state: "BROKEN", deploymentGroup: "web-dg" },
    };

    const error = await handler(broken, CONTEXT).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(EventValidationError);
    expect((error as EventValidationError).fields).toEqual(
      expect.arrayContaining(["source", "detail.deploymentId", "detail.state"]),
    );
    expect((error as Error).message).toMatch(/source: .*detail\.deploymentId: .*detail\.state: /);
    expect(codeDeploy.commandCalls(GetDeploymentCommand)).toHaveLength(0);
    expect(codeDeploy.commandCalls(ListDeploymentTargetsCommand)).toHaveLength(0);
  });
});

describe("deployment-failure input", () => {
  it("accepts the console test events shipped in events/", () => {
    expect(parseDeploymentFailureInput(CONSOLE_EVENT)).toEqual({
      deploymentId: "d-ABCDEF123",
      source: "event",
      eventId: "c071bfbf-83c4-49ca-a6ff-3df053957145",
    });
    expect(parseDeploymentFailureInput(CONSOLE_REPLAY)).toEqual({
      deploymentId: "d-ABCDEF123",
      source: "replay",
    });
  });

  it("names a misspelt replay field and the missing one", () => {
    const parse = () => parseDeploymentFailureInput({ deploymentID: "d-ABCDEF123" });
    expect(parse).toThrow(EventValidationError);
    expect(parse).toThrow(/deploymentId: .*deploymentID: /);
  });

  it("rejects a deployment id that is not one", () => {
    expect(() => parseDeploymentFailureInput({ deploymentId: "arn:aws:codedeploy:d-1" })).toThrow(
      /deploymentId: a CodeDeploy deployment id/,
    );
  });

  it("rejects input that is not an object", () => {
    expect(() => parseDeploymentFailureInput("d-ABCDEF123")).toThrow(EventValidationError);
    expect(() => parseDeploymentFailureInput(null)).toThrow(
      /expected a CodeDeploy Deployment State-change Notification/,
    );
  });
});

describe("deployment-failure handler: the retry queue", () => {
  const record = (messageId: string, body: string) => ({
    messageId,
    receiptHandle: `handle-${messageId}`,
    body,
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:agentfix-failure-retry",
  });

  it("handles each retry record of an SQS batch, and a bad record fails alone", async () => {
    const report = await batchHandler({
      Records: [
        record(
          "m-1",
          JSON.stringify({ deploymentId: "d-ABCDEF123", firstSeenAt: "2026-03-02T07:00:00.000Z" }),
        ),
        record("m-2", JSON.stringify({ deploymentId: "nope" })),
        record("m-3", "not json"),
      ],
    });

    expect(report.deployments).toEqual([
      expect.objectContaining({ deploymentId: "d-ABCDEF123", decision: "SKIPPED" }),
    ]);
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-2" }, { itemIdentifier: "m-3" }]);
    expect(report.failedRecords?.[0]?.error).toMatch(/deploymentId: .*firstSeenAt: /);
    expect(codeDeploy.commandCalls(GetDeploymentCommand)).toHaveLength(1);
  });

  it("reads the time a retry record was first seen", () => {
    expect(
      parseFailureRetryMessage(
        JSON.stringify({ deploymentId: "d-ABCDEF123", firstSeenAt: "2026-03-02T07:00:00.000Z" }),
      ),
    ).toEqual({
      deploymentId: "d-ABCDEF123",
      source: "retry",
      firstSeenAt: Date.parse("2026-03-02T07:00:00.000Z"),
    });
  });
});
