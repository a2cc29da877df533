import { readFileSync } from "node:fs";
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CodeDeployClient } from "@aws-sdk/client-codedeploy";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventValidationError } from "../../functions/core/common/errors.js";

/**
 * Hostile and malformed inputs for every handler: each is refused with a clear validation error that
 * names the bad fields, and no AWS call is made. Mutations are drawn from a seeded generator, so a
 * failure reproduces.
 */
const clients = [
  mockClient(SSMClient),
  mockClient(AutoScalingClient),
  mockClient(CodeDeployClient),
  mockClient(DynamoDBClient),
  mockClient(SQSClient),
];
const awsCalls = () => clients.reduce((total, mock) => total + mock.calls().length, 0);

type Handler = (event: unknown, context: Context) => Promise<unknown>;
let launch: Handler;
let deploymentFailure: Handler;
let sweep: (event: unknown) => Promise<unknown>;

const context = {
  awsRequestId: "fuzz",
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

beforeAll(async () => {
  process.env.LIFECYCLE_HOOK_NAME = "agentfix-launch";
  process.env.LAUNCH_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/launch";
  launch = (await import("../../functions/launch.js")).handleLaunch;
  deploymentFailure = (await import("../../functions/deployment-failure.js")).handleDeploymentFailure;
  sweep = (await import("../../functions/sweep.js")).handleSweep;
});
afterAll(() => {
  for (const mock of clients) mock.restore();
});

const fixture = (name: string) => JSON.parse(readFileSync(`tests/events/${name}`, "utf8"));
const launchEvent = () => ({
  ...fixture("ec2-instance-launch-lifecycle-action.json"),
  time: "2026-11-26T07:00:00Z",
});
const failureEvent = () => fixture("codedeploy-deployment-state-change.FAILURE.derived.json");

/** Small deterministic PRNG (mulberry32). */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE: unknown[] = [
  null,
  42,
  "i-1;rm -rf /",
  "x".repeat(1_000_000),
  -1,
  true,
  [],
  [1, 2],
  {},
  { $ne: null },
  "$(reboot)",
  "i-0123456789abcdef0\n; curl evil",
  "'; DROP TABLE leases; --",
  { toString: "boom" },
];

function mutate(
  base: Record<string, unknown>,
  next: () => number,
): { event: Record<string, unknown>; path: string } {
  const event = structuredClone(base);
  const paths: string[][] = [];
  const walk = (value: unknown, path: string[]) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, child] of Object.entries(value)) {
        paths.push([...path, key]);
        walk(child, [...path, key]);
      }
    }
  };
  walk(event, []);
  const path = paths[Math.floor(next() * paths.length)] ?? ["detail"];
  let holder: Record<string, unknown> = event;
  for (const key of path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
  const leaf = path[path.length - 1] ?? "detail";
  if (next() < 0.3) delete holder[leaf];
  else holder[leaf] = HOSTILE[Math.floor(next() * HOSTILE.length)];
  return { event, path: path.join(".") };
}

async function expectRefused(run: () => Promise<unknown>, field?: string) {
  const before = awsCalls();
  let error: unknown;
  try {
    await run();
  } catch (caught) {
    error = caught;
  }
  expect(error, "the input must be refused").toBeInstanceOf(EventValidationError);
  if (field) expect((error as EventValidationError).message).toContain(field);
  expect(awsCalls() - before, "no AWS call for a refused input").toBe(0);
}

describe("hostile input", () => {
  it("refuses inputs that are not JSON objects, for every handler", async () => {
    for (const value of [null, 42, "text", [], [launchEvent()], true]) {
      await expectRefused(() => launch(value, context));
      await expectRefused(() => deploymentFailure(value, context));
    }
    for (const value of [42, "text", [], true]) await expectRefused(() => sweep(value));
  });

  it("refuses injection-looking instance ids in events and replays", async () => {
    for (const id of [
      "i-1;rm -rf /",
      "i-0123456789abcdef0 && reboot",
      "$(curl x)",
      `i-${"a".repeat(10_000)}`,
      "",
    ]) {
      const event = launchEvent();
      event.detail.EC2InstanceId = id;
      await expectRefused(() => launch(event, context), "detail.EC2InstanceId");
      await expectRefused(
        () => launch({ instanceIds: [id], autoScalingGroupName: "web" }, context),
        "instanceIds.0",
      );
    }
  });

  it("refuses huge strings, unknown keys and unknown transitions' malformed shapes", async () => {
    await expectRefused(
      () => launch({ instanceIds: ["i-0123456789abcdef0"], autoScalingGroupName: "x".repeat(300) }, context),
      "autoScalingGroupName",
    );
    await expectRefused(
      () =>
        launch(
          { instanceIds: ["i-0123456789abcdef0"], autoScalingGroupName: "web", command: "rm -rf /" },
          context,
        ),
      "command",
    );
    await expectRefused(() => deploymentFailure({ deploymentId: "d-1; reboot" }, context), "deploymentId");
    await expectRefused(() => deploymentFailure({ deploymentId: "d-ABC", extra: 1 }, context), "extra");
    const event = failureEvent();
    event.detail.state = "EXPLODED";
    await expectRefused(() => deploymentFailure(event, context), "detail.state");
  });

  it("refuses every random mutation of a launch event that breaks its shape (200 seeds)", async () => {
    for (let seed = 1; seed <= 200; seed += 1) {
      const { event, path } = mutate(launchEvent(), random(seed));
      const before = awsCalls();
      try {
        await launch(event, context);
      } catch (error) {
        expect(error, `seed ${seed} (${path})`).toBeInstanceOf(EventValidationError);
        expect(awsCalls() - before, `seed ${seed} (${path})`).toBe(0);
        continue;
      }
      // Mutations of fields the schema does not read (version, id, resources) may still be valid
      // events; then every id that reached an AWS call passed the instance-id pattern.
      for (const mock of clients) {
        for (const call of mock.calls()) {
          const ids = JSON.stringify(call.args[0]).match(/"i-[^"]*"/g) ?? [];
          for (const id of ids) expect(id, `seed ${seed}`).toMatch(/^"i-[0-9a-f]{8,17}"$/);
        }
      }
    }
  });

  it("refuses every random mutation of a deployment failure event that breaks its shape (200 seeds)", async () => {
    for (let seed = 1; seed <= 200; seed += 1) {
      const { event, path } = mutate(failureEvent(), random(seed));
      const before = awsCalls();
      try {
        await deploymentFailure(event, context);
      } catch (error) {
        if (error instanceof EventValidationError) {
          expect(awsCalls() - before, `seed ${seed} (${path})`).toBe(0);
          continue;
        }
        // A valid event went on to AWS, which the mocks answer with nothing: that is not a validation case.
        expect(String(error), `seed ${seed} (${path})`).not.toMatch(/EventValidationError/);
      }
    }
  });

  it("fails only the malformed records of an SQS batch, without an AWS call for them", async () => {
    const before = awsCalls();
    const report = (await launch(
      {
        Records: [
          { messageId: "a", body: "{not json" },
          {
            messageId: "b",
            body: JSON.stringify({ instanceIds: ["i-1;rm -rf /"], autoScalingGroupName: "web" }),
          },
          { messageId: "c", body: JSON.stringify(42) },
        ],
      },
      context,
    )) as { batchItemFailures: { itemIdentifier: string }[]; failedRecords: { error: string }[] };
    expect(report.batchItemFailures.map((item) => item.itemIdentifier)).toEqual(["a", "b", "c"]);
    expect(report.failedRecords[1]?.error).toMatch(/instanceIds\.0/);
    expect(awsCalls() - before).toBe(0);
  });
});
