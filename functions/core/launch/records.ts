// What the launch path keeps between invocations in the stage's table: one record per instance
// (`launch#<instance id>`) and one mark per install command (`command#<command id>`: when it was last
// read). Every write is conditional on the version read, so an invocation holding stale state acts on
// nothing: this, not timing, keeps two invocations from sending two installs or completing one twice.
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import type { AgentJob } from "../agent/job.js";
import type { CommandMark } from "../agent/work.js";
import { dynamodb } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { mapLimit } from "../common/concurrency.js";
import { putIf } from "../common/lease.js";
import type { LaunchOutcome } from "./types.js";

/** A launch: the instance's agent work plus its lifecycle action. */
export interface LaunchRecord extends AgentJob {
  group: string;
  hook: string;
  /** The lifecycle action's token, when an event brought it; a new token is a new launch (warm pool exit). */
  token?: string;
  origin?: string;
  /** AWS-time ms when the lifecycle action started. */
  startedAt: number;
  heartbeatTimeoutSeconds: number;
  lastBeatAt?: number;
  /** When Auto Scaling last said the instance still waits. */
  stateCheckedAt?: number;
  /** `finishing`: AWS-time ms since when the launch's completion has been due. */
  finishingSince?: number;
  /** `finishing`: the result the lifecycle action is completed with. */
  result?: "CONTINUE" | "ABANDON";
  /** `done`: how the launch ended. */
  outcome?: LaunchOutcome["outcome"];
  bakedAgent?: LaunchOutcome["bakedAgent"];
  /** The version read; a write succeeds only while the stored record is still at it (0: not stored). */
  version: number;
  updatedAt?: number;
}

/**
 * A group's breaker (only with FAILURE_RESULT ABANDON): it opens after BREAKER_THRESHOLD launches in a
 * row ended in the instance's own failure, and closes when one verifies. While open, such failures
 * complete CONTINUE: a fault common to the group (a bad AMI, a broken package) must not cost capacity.
 */
export interface Breaker {
  failures: number;
  open: boolean;
}
const BREAKER_THRESHOLD = 3;

export interface RecordStore {
  read(instanceIds: readonly string[]): Promise<Map<string, LaunchRecord>>;
  /** Stores the record if it is still at the version read (and bumps it); false when it changed meanwhile. */
  write(record: LaunchRecord): Promise<boolean>;
  marks(commandIds: readonly string[]): Promise<Map<string, CommandMark>>;
  /** Claims a read of the command: false when another invocation read it since `seen`. */
  claimRead(commandId: string, seen: CommandMark | undefined, next: CommandMark): Promise<boolean>;
  breaker(group: string): Promise<Breaker>;
  /** Counts launches of the group that ended (read, then a conditional write; retried on a conflict). */
  noteEnded(group: string, ended: { verified: number; ownFailures: number }): Promise<Breaker>;
}

/** How long a record is kept: long enough for late duplicates, redeliveries and replays. */
const RECORD_TTL_SECONDS = 24 * 3600;
const MARK_TTL_SECONDS = 6 * 3600;
const BREAKER_TTL_SECONDS = 30 * 24 * 3600;
const CALLS_IN_FLIGHT = 10;

const recordKey = (instanceId: string) => `launch#${instanceId}`;
const markKey = (commandId: string) => `command#${commandId}`;
const breakerKey = (group: string) => `breaker#${group}`;

/**
 * Where items are kept, as JSON: `get` answers an item and the version it was read at (0: none
 * stored); `put` stores `value` at `read + 1` only while the stored item is still at `read`.
 */
interface Items {
  get<T>(key: string): Promise<{ value?: T; version: number }>;
  put(key: string, value: unknown, read: number, ttlSeconds: number): Promise<boolean>;
}

/** Items in DynamoDB: one per key, `version` the condition of every write. */
function dynamoItems(tableName: string): Items {
  return {
    async get(key) {
      const { Item } = await dynamodb.send(
        new GetItemCommand({ TableName: tableName, Key: { pk: { S: key } }, ConsistentRead: true }),
      );
      const data = Item?.record?.S;
      return { value: data ? JSON.parse(data) : undefined, version: Number(Item?.version?.N ?? "0") };
    },
    put(key, value, read, ttlSeconds) {
      return putIf({
        TableName: tableName,
        Item: {
          pk: { S: key },
          record: { S: JSON.stringify(value) },
          version: { N: String(read + 1) },
          ttl: { N: String(Math.ceil(clock.now() / 1000) + ttlSeconds) },
        },
        ...(read === 0
          ? { ConditionExpression: "attribute_not_exists(version)" }
          : {
              ConditionExpression: "version = :read",
              ExpressionAttributeValues: { ":read": { N: String(read) } },
            }),
      });
    },
  };
}

function storeOf(items: Items): RecordStore {
  /** Every item of these ids, each with the version it was read at. */
  const readAll = async <T>(ids: readonly string[], key: (id: string) => string) => {
    const found = new Map<string, T & { version: number }>();
    await mapLimit([...new Set(ids)], CALLS_IN_FLIGHT, async (id) => {
      const { value, version } = await items.get<T>(key(id));
      if (value) found.set(id, { ...value, version });
    });
    return found;
  };
  const breakerOf = async (group: string) => {
    const { value, version } = await items.get<Breaker>(breakerKey(group));
    return { breaker: value ?? { failures: 0, open: false }, version };
  };
  return {
    read: (instanceIds) => readAll<LaunchRecord>(instanceIds, recordKey),
    async write(record) {
      const next = { ...record, version: record.version + 1, updatedAt: clock.now() };
      const won = await items.put(recordKey(record.instanceId), next, record.version, RECORD_TTL_SECONDS);
      if (won) Object.assign(record, { version: next.version, updatedAt: next.updatedAt });
      return won;
    },
    marks: (commandIds) => readAll<CommandMark>(commandIds, markKey),
    async claimRead(commandId, seen, next) {
      const mark = { readAt: Math.round(next.readAt), lookups: next.lookups };
      return items.put(markKey(commandId), mark, seen?.version ?? 0, MARK_TTL_SECONDS);
    },
    breaker: async (group) => (await breakerOf(group)).breaker,
    async noteEnded(group, ended) {
      for (let attempt = 0; ; attempt += 1) {
        const { breaker, version } = await breakerOf(group);
        const failures = breaker.failures + ended.ownFailures;
        const next =
          ended.verified > 0
            ? { failures: 0, open: false }
            : { failures, open: breaker.open || failures >= BREAKER_THRESHOLD };
        const written = await items.put(breakerKey(group), next, version, BREAKER_TTL_SECONDS);
        if (written || attempt >= 4) return next;
      }
    },
  };
}

/** Records in memory, with the same conditional semantics (tests, a stage without a table). */
export function memoryStore(): RecordStore {
  const items = new Map<string, { data: string; version: number }>();
  return storeOf({
    async get(key) {
      const item = items.get(key);
      return { value: item && JSON.parse(item.data), version: item?.version ?? 0 };
    },
    async put(key, value, read) {
      if ((items.get(key)?.version ?? 0) !== read) return false;
      items.set(key, { data: JSON.stringify(value), version: read + 1 });
      return true;
    },
  });
}

export function dynamoStore(tableName: string): RecordStore {
  return tableName ? storeOf(dynamoItems(tableName)) : memoryStore();
}
