import { randomBytes } from "node:crypto";
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
} from "@aws-sdk/client-dynamodb";
import type { World } from "../world/world.js";

/**
 * Where the handlers' DynamoDB client goes: the sandbox's own model (`world.dynamodb`, served by
 * `server/dynamodb-operations.ts`), or another DynamoDB implementation (moto, DynamoDB Local) at an
 * endpoint of its own, so that the service's conditional writes are judged by an evaluator we did not
 * write. Everything else (SSM, Auto Scaling, CodeDeploy, SQS) stays on the sandbox either way.
 *
 * Calls to an external endpoint never reach the sandbox's server: they are not counted in `apiCalls`,
 * not throttled by `traffic.rateLimits` and get no injected 5xx from `traffic.errorRates` (a
 * scenario's `DynamoDB.*` faults do not apply).
 */
export interface DynamoDbTarget {
  /** The endpoint the handlers' DynamoDB client is given (`AWS_ENDPOINT_URL_DYNAMODB`). */
  readonly endpoint: string;
  /** True when the endpoint is not the sandbox's own server. */
  readonly external: boolean;
  /** Prepended to every table name created there (empty on the sandbox's own model). */
  readonly tablePrefix: string;
  /** Tables created so far, by the name the functions were given. */
  readonly tables: readonly string[];
  /** Creates a table keyed by a string hash key `pk`; resolves the name the functions must use. */
  createTable(name: string): Promise<string>;
}

/** The sandbox's own DynamoDB model: tables live in the world, calls go through the sandbox's server. */
export function worldDynamoDb(world: World, endpoint: string): DynamoDbTarget {
  const tables: string[] = [];
  return {
    endpoint,
    external: false,
    tablePrefix: "",
    tables,
    async createTable(name) {
      world.dynamodb.createTable({ name, hashKey: "pk" });
      tables.push(name);
      return name;
    },
  };
}

/** How long a created table may take to become ACTIVE (moto and DynamoDB Local: at once). */
const ACTIVE_WITHIN_MS = 10_000;

/**
 * A DynamoDB at another endpoint. One server can outlive many runs (a moto server shared by a test
 * session, or started by hand for several `npm start`s), so every table name carries a prefix unique
 * to this run: two runs never read each other's leases or launch records.
 */
export function externalDynamoDb(endpoint: string, region: string): DynamoDbTarget {
  const tablePrefix = `run${Date.now().toString(36)}${randomBytes(3).toString("hex")}-`;
  // The sandbox's own client, not the handlers': their shared clients stay untouched until a handler runs.
  const client = new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId: "sandbox", secretAccessKey: "sandbox" },
    maxAttempts: 3,
  });
  const tables: string[] = [];
  return {
    endpoint,
    external: true,
    tablePrefix,
    tables,
    async createTable(name) {
      const tableName = `${tablePrefix}${name}`;
      try {
        // The same key schema as the Foundation stack's lease table and the sandbox's model. TTL is
        // left off: the sandbox's model has none either, and no run lasts long enough for it to matter.
        await client.send(
          new CreateTableCommand({
            TableName: tableName,
            AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
            KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
            BillingMode: "PAY_PER_REQUEST",
          }),
        );
      } catch (error) {
        if (!(error instanceof ResourceInUseException)) {
          throw new ExternalDynamoDbError(`could not create table ${tableName} at ${endpoint}`, {
            cause: error,
          });
        }
      }
      await waitUntilActive(client, tableName, endpoint);
      tables.push(tableName);
      return tableName;
    },
  };
}

async function waitUntilActive(client: DynamoDBClient, tableName: string, endpoint: string): Promise<void> {
  const deadline = Date.now() + ACTIVE_WITHIN_MS;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") return;
    if (Date.now() >= deadline)
      throw new ExternalDynamoDbError(
        `table ${tableName} at ${endpoint} is still ${Table?.TableStatus ?? "unknown"} after ${ACTIVE_WITHIN_MS / 1000} s`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export class ExternalDynamoDbError extends Error {
  override name = "ExternalDynamoDbError";
}

/** Checks an endpoint given on the command line or in the environment before anything is wired to it. */
export function parseDynamoDbEndpoint(value: string, source: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new ExternalDynamoDbError(`${source} must be an http(s) URL, got "${value}"`, { cause: error });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ExternalDynamoDbError(`${source} must be an http(s) URL, got "${value}"`);
  return value.replace(/\/+$/, "");
}
