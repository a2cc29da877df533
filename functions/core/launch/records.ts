// What the launch path knows of each launch, kept between invocations: one record per instance in the
// stage's table (`launch#<instance id>`), and one mark per install command (`command#<command id>`)
// saying when it was last read. Every write is conditional on the version that was read, so an
// invocation holding stale state learns so from the write and acts on nothing: this, not timing, is
// what keeps two invocations from sending two installs or completing one action twice.
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import type { AgentJob } from "../agent/job.js";
import { dynamodb } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { mapLimit } from "../common/concurrency.js";
import type { BakedAgentReport, LaunchOutcomeKind } from "./types.js";

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
  /** `finishing`: the result the lifecycle action is completed with. */
  result?: "CONTINUE" | "ABANDON";
  /** `done`: how the launch ended. */
  outcome?: LaunchOutcomeKind;
  bakedAgent?: BakedAgentReport;
  /** The version read; a write succeeds only while the stored record is still at it (0: not stored). */
  version: number;
  updatedAt?: number;
}

/** When an install command was last read, and how many overdue looks it has had. */
export interface CommandMark {
  readAt: number;
  lookups: number;
}

/**
 * A group's breaker (only with FAILURE_RESULT ABANDON): it opens after BREAKER_THRESHOLD launches of
 * the group in a row ended in the instance's own failure, and closes when one verifies again. While it
 * is open, such failures complete CONTINUE: a fault common to the group (a bad AMI, a broken package
 * release) must not turn into a capacity outage.
 */
export interface Breaker {
  failures: number;
  open: boolean;
}
export const BREAKER_THRESHOLD = 3;

/** The next state of a breaker after some launches of its group ended. */
export function nextBreaker(breaker: Breaker, ended: { verified: number; ownFailures: number }): Breaker {
  if (ended.verified > 0) return { failures: 0, open: false };
  const failures = breaker.failures + ended.ownFailures;
  return { failures, open: breaker.open || failures >= BREAKER_THRESHOLD };
}

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
const CALLS_IN_FLIGHT = 10;

export const recordKey = (instanceId: string) => `launch#${instanceId}`;
const markKey = (commandId: string) => `command#${commandId}`;
const breakerKey = (group: string) => `breaker#${group}`;

/** Records in memory, with the same conditional semantics (tests; the failure path's upgrade). */
export function memoryStore(): RecordStore {
  const records = new Map<string, string>();
  const marks = new Map<string, CommandMark>();
  const breakers = new Map<string, Breaker>();
  return {
    async breaker(group) {
      return { ...(breakers.get(group) ?? { failures: 0, open: false }) };
    },
    async noteEnded(group, ended) {
      const next = nextBreaker(breakers.get(group) ?? { failures: 0, open: false }, ended);
      breakers.set(group, next);
      return { ...next };
    },
    async read(instanceIds) {
      const found = new Map<string, LaunchRecord>();
      for (const id of instanceIds) {
        const item = records.get(id);
        if (item) found.set(id, JSON.parse(item) as LaunchRecord);
      }
      return found;
    },
    async write(record) {
      const stored = records.get(record.instanceId);
      const version = stored ? (JSON.parse(stored) as LaunchRecord).version : 0;
      if (version !== record.version) return false;
      record.version += 1;
      record.updatedAt = clock.now();
      records.set(record.instanceId, JSON.stringify(record));
      return true;
    },
    async marks(commandIds) {
      return new Map(
        commandIds.flatMap((id) => (marks.has(id) ? [[id, { ...marks.get(id) } as CommandMark]] : [])),
      );
    },
    async claimRead(commandId, seen, next) {
      const stored = marks.get(commandId);
      if ((stored?.readAt ?? -1) !== (seen?.readAt ?? -1)) return false;
      marks.set(commandId, { ...next });
      return true;
    },
  };
}

export function dynamoStore(tableName: string): RecordStore {
  if (!tableName) return memoryStore();
  const put = async (input: PutItemCommandInput): Promise<boolean> => {
    try {
      await dynamodb.send(new PutItemCommand(input));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  };
  const getBreaker = async (group: string) => {
    const answer = await dynamodb.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: breakerKey(group) } },
        ConsistentRead: true,
      }),
    );
    const item = answer.Item;
    return {
      breaker: { failures: Number(item?.failures?.N ?? "0"), open: item?.open?.BOOL === true },
      version: item?.version?.N,
    };
  };
  return {
    async breaker(group) {
      return (await getBreaker(group)).breaker;
    },
    async noteEnded(group, ended) {
      for (let attempt = 0; ; attempt += 1) {
        const { breaker, version } = await getBreaker(group);
        const next = nextBreaker(breaker, ended);
        const written = await put({
          TableName: tableName,
          Item: {
            pk: { S: breakerKey(group) },
            failures: { N: String(next.failures) },
            open: { BOOL: next.open },
            version: { N: String(Number(version ?? "0") + 1) },
          },
          ...(version
            ? {
                ConditionExpression: "version = :read",
                ExpressionAttributeValues: { ":read": { N: version } },
              }
            : { ConditionExpression: "attribute_not_exists(pk)" }),
        });
        if (written || attempt >= 4) return next;
      }
    },
    async read(instanceIds) {
      const found = new Map<string, LaunchRecord>();
      await mapLimit([...new Set(instanceIds)], CALLS_IN_FLIGHT, async (instanceId) => {
        const answer = await dynamodb.send(
          new GetItemCommand({
            TableName: tableName,
            Key: { pk: { S: recordKey(instanceId) } },
            ConsistentRead: true,
          }),
        );
        const data = answer.Item?.record?.S;
        if (!data) return;
        const record = JSON.parse(data) as LaunchRecord;
        record.version = Number(answer.Item?.version?.N ?? "0");
        found.set(instanceId, record);
      });
      return found;
    },
    async write(record) {
      const next = { ...record, version: record.version + 1, updatedAt: clock.now() };
      const won = await put({
        TableName: tableName,
        Item: {
          pk: { S: recordKey(record.instanceId) },
          record: { S: JSON.stringify(next) },
          version: { N: String(next.version) },
          ttl: { N: String(Math.ceil(clock.now() / 1000) + RECORD_TTL_SECONDS) },
        },
        ...(record.version === 0
          ? { ConditionExpression: "attribute_not_exists(pk)" }
          : {
              ConditionExpression: "version = :read",
              ExpressionAttributeValues: { ":read": { N: String(record.version) } },
            }),
      });
      if (won) Object.assign(record, { version: next.version, updatedAt: next.updatedAt });
      return won;
    },
    async marks(commandIds) {
      const found = new Map<string, CommandMark>();
      await mapLimit([...new Set(commandIds)], CALLS_IN_FLIGHT, async (commandId) => {
        const answer = await dynamodb.send(
          new GetItemCommand({
            TableName: tableName,
            Key: { pk: { S: markKey(commandId) } },
            ConsistentRead: true,
          }),
        );
        const readAt = answer.Item?.readAt?.N;
        if (readAt)
          found.set(commandId, { readAt: Number(readAt), lookups: Number(answer.Item?.lookups?.N ?? "0") });
      });
      return found;
    },
    async claimRead(commandId, seen, next) {
      return put({
        TableName: tableName,
        Item: {
          pk: { S: markKey(commandId) },
          readAt: { N: String(Math.round(next.readAt)) },
          lookups: { N: String(next.lookups) },
          ttl: { N: String(Math.ceil(next.readAt / 1000) + MARK_TTL_SECONDS) },
        },
        ...(seen
          ? {
              ConditionExpression: "readAt = :seen",
              ExpressionAttributeValues: { ":seen": { N: String(Math.round(seen.readAt)) } },
            }
          : { ConditionExpression: "attribute_not_exists(pk)" }),
      });
    },
  };
}
