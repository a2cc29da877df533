import {
  type AttributeValue,
  CreateTableCommand,
  type DynamoDBClient,
  GetItemCommand,
} from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { sdkClients, testSandbox } from "./helpers.js";
import { type MotoServer, motoAvailability, startMoto } from "./moto.js";

/**
 * The lease the functions take (functions/core/common/lease.ts, imported as it is) against two
 * DynamoDB implementations: the sandbox's own condition evaluator and moto's. Each step's answer and
 * the item left in the table must be the same on both, and what DynamoDB documents.
 */
const moto = motoAvailability();
const TABLE = "leases";
/** AWS time of the steps, frozen (see `freeze`): a lease's expiry is compared with it to the millisecond. */
const T = Date.parse("2026-03-02T07:00:00Z");

type Step = { step: string; answer: unknown; item: Record<string, AttributeValue> | undefined };
type LeaseModules = {
  lease: typeof import("../../functions/core/common/lease.js");
  clock: typeof import("../../functions/core/common/clock.js");
};

/**
 * The lease module with a fresh handlers' DynamoDB client at `endpoint`. The client keeps the endpoint
 * it reads from the environment at its first call, so each implementation gets its own module graph.
 */
async function leaseAt(endpoint: string): Promise<LeaseModules> {
  process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
  // No retries: with AWS time frozen (`freeze`) the clients' backoff would never end, and an answer
  // that needed a retry is worth seeing anyway.
  process.env.AWS_MAX_ATTEMPTS = "1";
  vi.resetModules();
  return {
    lease: await import("../../functions/core/common/lease.js"),
    clock: await import("../../functions/core/common/clock.js"),
  };
}

/** Stops AWS time at `at`: a scale this slow keeps `floor(clock.now())` at `at` for the test's length. */
const freeze = ({ clock }: LeaseModules, at: number) => clock.setClockScale(1e12, at);

async function story(modules: LeaseModules, client: DynamoDBClient): Promise<Step[]> {
  const lease = modules.lease.dynamoLease(TABLE);
  const steps: Step[] = [];
  const item = async (key: string) =>
    (
      await client.send(
        new GetItemCommand({ TableName: TABLE, Key: { pk: { S: key } }, ConsistentRead: true }),
      )
    ).Item;
  const step = async (name: string, key: string, action: () => Promise<unknown>) => {
    const answer = await action();
    steps.push({ step: name, answer, item: await item(key) });
  };

  freeze(modules, T);
  await step("a acquires a free key", "agent#i-1", () => lease.acquire("agent#i-1", "a", T + 60_000));
  await step("b is refused while a holds it", "agent#i-1", () => lease.acquire("agent#i-1", "b", T + 60_000));
  await step("a renews its own lease", "agent#i-1", () => lease.acquire("agent#i-1", "a", T + 90_000));
  await step("b's release leaves a's lease", "agent#i-1", () => lease.release("agent#i-1", "b"));
  freeze(modules, T + 90_000);
  await step("b is refused at the very millisecond a's lease ends", "agent#i-1", () =>
    lease.acquire("agent#i-1", "b", T + 150_000),
  );
  freeze(modules, T + 90_001);
  await step("b takes over once a's lease has lapsed", "agent#i-1", () =>
    lease.acquire("agent#i-1", "b", T + 150_000),
  );
  await step("a's late release leaves b's lease", "agent#i-1", () => lease.release("agent#i-1", "a"));
  await step("a is refused while b holds it", "agent#i-1", () =>
    lease.acquire("agent#i-1", "a", T + 200_000),
  );
  await step("b's release ends it", "agent#i-1", () => lease.release("agent#i-1", "b"));
  await step("a acquires the released key", "agent#i-1", () => lease.acquire("agent#i-1", "a", T + 200_000));
  await step("releasing a key nobody holds is quiet", "agent#i-2", () => lease.release("agent#i-2", "a"));

  // Expiry times compare as numbers, not strings: 999 ends before 1000 though "999" > "1000".
  freeze(modules, 500);
  await step("c leases until 999", "agent#i-3", () => lease.acquire("agent#i-3", "c", 999));
  freeze(modules, 1_000);
  await step("d takes over at 1000", "agent#i-3", () => lease.acquire("agent#i-3", "d", 9_999));
  return steps;
}

describe.skipIf(moto.skip)(
  `the lease's conditional writes on moto and on the sandbox${moto.skip ? ` (skipped: ${moto.reason})` : ""}`,
  () => {
    let server: MotoServer | undefined;
    let sandbox: Sandbox | undefined;

    beforeAll(async () => {
      server = await startMoto();
      sandbox = await testSandbox({ seed: "moto-lease" });
      sandbox.world.dynamodb.createTable({ name: TABLE, hashKey: "pk" });
      await sdkClients(server.endpoint).dynamodb.send(
        new CreateTableCommand({
          TableName: TABLE,
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    });
    afterAll(async () => {
      await sandbox?.close();
      await server?.stop();
    });

    it("acquires, refuses while held, takes over after expiry and releases only by its holder, alike on both", async () => {
      const onSandbox = await story(await leaseAt(sandbox!.endpoint), sdkClients(sandbox!.endpoint).dynamodb);
      const onMoto = await story(await leaseAt(server!.endpoint), sdkClients(server!.endpoint).dynamodb);

      const held = (holder: string, expiresAt: number) => ({
        pk: expect.anything(),
        holder: { S: holder },
        expiresAt: { N: String(expiresAt) },
        ttl: { N: String(Math.ceil(expiresAt / 1000) + 3600) },
      });
      const expected = [
        { answer: true, item: held("a", T + 60_000) },
        { answer: false, item: held("a", T + 60_000) },
        { answer: true, item: held("a", T + 90_000) },
        { answer: undefined, item: held("a", T + 90_000) },
        { answer: false, item: held("a", T + 90_000) },
        { answer: true, item: held("b", T + 150_000) },
        { answer: undefined, item: held("b", T + 150_000) },
        { answer: false, item: held("b", T + 150_000) },
        { answer: undefined, item: undefined },
        { answer: true, item: held("a", T + 200_000) },
        { answer: undefined, item: undefined },
        { answer: true, item: held("c", 999) },
        { answer: true, item: held("d", 9_999) },
      ];
      expect(onSandbox.map(({ answer, item }) => ({ answer, item }))).toEqual(expected);
      // Step by step, named, so that a difference says where the two implementations part.
      expect(onMoto).toEqual(onSandbox);
    });
  },
);
