// Short leases in a DynamoDB table, so that two concurrent invocations (a duplicated event, a
// sweep re-enqueue, an operator replay) never work on the same instance or deployment at once.
// Two concurrent installs of one Distributor package fail on the instance ("Package ... is already
// in the process of action Install"): https://github.com/aws/amazon-ssm-agent (configurepackage_lock.go).
// A lease ends by itself at `expiresAt`, so a crashed invocation never blocks the work for long.
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import { dynamodb } from "./clients.js";
import { clock } from "./clock.js";

/** A short, exclusive claim on a key, by a holder, until a time. */
export interface Lease {
  acquire(key: string, holder: string, untilMs: number): Promise<boolean>;
  /** Ends the lease early, if `holder` still holds it. */
  release(key: string, holder: string): Promise<void>;
}

/** A conditional PutItem: false when its condition failed (another writer got there first). */
export async function putIf(input: PutItemCommandInput): Promise<boolean> {
  try {
    await dynamodb.send(new PutItemCommand(input));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Leasing switched off (no table configured): every acquire succeeds. */
export const NO_LEASE: Lease = { acquire: async () => true, release: async () => undefined };

export function dynamoLease(tableName: string): Lease {
  if (!tableName) return NO_LEASE;
  return {
    async acquire(key, holder, untilMs) {
      const now = Math.floor(clock.now());
      return putIf({
        TableName: tableName,
        Item: {
          pk: { S: key },
          holder: { S: holder },
          expiresAt: { N: String(Math.ceil(untilMs)) },
          // DynamoDB TTL (epoch seconds) removes stale rows an hour after they lapse.
          ttl: { N: String(Math.ceil(untilMs / 1000) + 3600) },
        },
        ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now OR holder = :holder",
        ExpressionAttributeValues: { ":now": { N: String(now) }, ":holder": { S: holder } },
      });
    },
    async release(key, holder) {
      try {
        await dynamodb.send(
          new DeleteItemCommand({
            TableName: tableName,
            Key: { pk: { S: key } },
            ConditionExpression: "holder = :holder",
            ExpressionAttributeValues: { ":holder": { S: holder } },
          }),
        );
      } catch (error) {
        // Someone else holds it now (ours had lapsed): theirs to release.
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    },
  };
}
