import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clock } from "../../functions/core/common/clock.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { expectAwsError, sdkClients, testSandbox } from "./helpers.js";

const LEASE_CONDITION = "attribute_not_exists(pk) OR expiresAt < :now OR holder = :holder";

describe("DynamoDB and SQS over the wire", () => {
  let sandbox: Sandbox;
  let clients: ReturnType<typeof sdkClients>;

  beforeAll(async () => {
    sandbox = await testSandbox({ seed: "data" });
    clients = sdkClients(sandbox.endpoint);
    sandbox.world.dynamodb.createTable({ name: "leases" });
    sandbox.world.sqs.createQueue({ name: "launch" });
  });
  afterAll(() => sandbox.close());

  const acquire = (holder: string, untilMs: number) =>
    clients.dynamodb.send(
      new PutItemCommand({
        TableName: "leases",
        Item: {
          pk: { S: "agent#i-1" },
          holder: { S: holder },
          expiresAt: { N: String(untilMs) },
          ttl: { N: "1" },
        },
        ConditionExpression: LEASE_CONDITION,
        ExpressionAttributeValues: {
          ":now": { N: String(Math.floor(clock.now())) },
          ":holder": { S: holder },
        },
      }),
    );

  it("evaluates the lease condition: free, held by another, renewed by its holder, expired", async () => {
    const now = clock.now();
    await acquire("a", now + 3_600_000);
    const refused = await acquire("b", now + 3_600_000).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConditionalCheckFailedException);
    expect((refused as Error).message).toBe("The conditional request failed");
    await acquire("a", now + 7_200_000);
    await acquire("b", now - 1_000).catch(() => undefined);
    const item = await clients.dynamodb.send(
      new GetItemCommand({ TableName: "leases", Key: { pk: { S: "agent#i-1" } } }),
    );
    expect(item.Item?.holder?.S).toBe("a");
    await clients.dynamodb.send(
      new PutItemCommand({
        TableName: "leases",
        Item: {
          pk: { S: "agent#i-1" },
          holder: { S: "a" },
          expiresAt: { N: String(Math.floor(now - 10_000)) },
        },
      }),
    );
    await acquire("b", now + 3_600_000);
    await clients.dynamodb.send(
      new DeleteItemCommand({ TableName: "leases", Key: { pk: { S: "agent#i-1" } } }),
    );
    expect(
      (
        await clients.dynamodb.send(
          new GetItemCommand({ TableName: "leases", Key: { pk: { S: "agent#i-1" } } }),
        )
      ).Item,
    ).toBeUndefined();
    await expectAwsError(
      clients.dynamodb.send(new GetItemCommand({ TableName: "nope", Key: { pk: { S: "x" } } })),
      "ResourceNotFoundException",
      400,
    );
  });

  it("sends messages with the checksums the SDK verifies, singly and in batches of up to 10", async () => {
    const queueUrl = sandbox.world.sqs.queueUrl("launch");
    const sent = await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: '{"instanceIds":["i-1"]}',
        MessageAttributes: { source: { DataType: "String", StringValue: "sweep" } },
      }),
    );
    expect(sent.MessageId).toBeTruthy();
    const batch = await clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: [
          { Id: "a", MessageBody: "1" },
          { Id: "b", MessageBody: "2" },
        ],
      }),
    );
    expect(batch.Successful?.map((entry) => entry.Id)).toEqual(["a", "b"]);
    expect(sandbox.world.sqs.queue("launch").messages).toHaveLength(3);
    await expectAwsError(
      clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Array.from({ length: 11 }, (_, index) => ({ Id: String(index), MessageBody: "x" })),
        }),
      ),
      "TooManyEntriesInBatchRequest",
      400,
    );
    await expectAwsError(
      clients.sqs.send(
        new SendMessageCommand({ QueueUrl: sandbox.world.sqs.queueUrl("missing"), MessageBody: "x" }),
      ),
      "QueueDoesNotExist",
      400,
    );
  });
});
