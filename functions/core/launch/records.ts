// Event completion keeps what it knows of each launch between invocations: one item per instance in
// the lease table (`launch#<instance id>`), read at the start of an invocation and written when it
// changed. An invocation takes the next step and returns; the record says where the launch stands,
// so a command event, a redelivered launch message, a sweep or a replay all resume the same work.
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { dynamodb } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { mapLimit } from "../common/concurrency.js";
import type { BakedAgentReport, LaunchOutcomeKind } from "./types.js";

/**
 * - `registering`: waiting for the instance to come Online with SSM.
 * - `installing`: the install document runs (`commandId`); its end event, or a look once it is overdue, settles it.
 * - `waiting`: a deployment or another install runs on the instance; the install is sent at `retryAt`.
 * - `done`: the lifecycle action was completed (or had ended); `outcome` says how.
 */
export type LaunchPhase = "registering" | "installing" | "waiting" | "done";

export interface LaunchRecord {
  instanceId: string;
  group: string;
  hook: string;
  /** The lifecycle action's token, when an event brought it; a new token is a new launch (warm pool exit). */
  token?: string;
  origin?: string;
  /** AWS-time ms when the lifecycle action started. */
  startedAt: number;
  phase: LaunchPhase;
  /** Installs sent so far (each counts as an attempt). */
  attempts: number;
  installCommandIds: string[];
  commandId?: string;
  commandSentAt?: number;
  /** Set before an install is sent: a cut-off invocation leaves it, and the next one looks the install up. */
  sendingSince?: number;
  retryAt?: number;
  lastBeatAt?: number;
  /** When Auto Scaling was last asked whether the instance still waits (instances slow to register). */
  stateCheckedAt?: number;
  heartbeatTimeoutSeconds: number;
  outcome?: LaunchOutcomeKind;
  reason: string;
  agentVersion?: string;
  /** The agent that ran before the install (baked into the AMI and started at boot). */
  runningBefore?: string;
  expectedVersion?: string;
  bakedAgent?: BakedAgentReport;
  updatedAt?: number;
}

/** How long a finished record is kept: long enough for late duplicates, redeliveries and replays. */
const RECORD_TTL_SECONDS = 24 * 3600;
const CALLS_IN_FLIGHT = 10;

export interface LaunchBook {
  read(instanceIds: readonly string[]): Promise<Map<string, LaunchRecord>>;
  write(records: readonly LaunchRecord[]): Promise<void>;
  /** When each of these install commands was last read (AWS-time ms), for those read at all. */
  readsOf(commandIds: readonly string[]): Promise<Map<string, number>>;
  noteRead(commandIds: readonly string[], at: number): Promise<void>;
}

export const recordKey = (instanceId: string) => `launch#${instanceId}`;
const commandKey = (commandId: string) => `command#${commandId}`;
/** A command's read mark only matters for seconds; it is kept an hour. */
const COMMAND_MARK_TTL_SECONDS = 3600;

/** Records in memory (no table configured: tests, a replay without leasing). */
export function memoryBook(): LaunchBook {
  const items = new Map<string, string>();
  const reads = new Map<string, number>();
  return {
    async readsOf(commandIds) {
      return new Map(commandIds.flatMap((id) => (reads.has(id) ? [[id, reads.get(id) ?? 0]] : [])));
    },
    async noteRead(commandIds, at) {
      for (const id of commandIds) reads.set(id, at);
    },
    async read(instanceIds) {
      const found = new Map<string, LaunchRecord>();
      for (const id of instanceIds) {
        const item = items.get(id);
        if (item) found.set(id, JSON.parse(item) as LaunchRecord);
      }
      return found;
    },
    async write(records) {
      for (const record of records) {
        record.updatedAt = clock.now();
        items.set(record.instanceId, JSON.stringify(record));
      }
    },
  };
}

export function dynamoBook(tableName: string): LaunchBook {
  if (!tableName) return memoryBook();
  return {
    async readsOf(commandIds) {
      const found = new Map<string, number>();
      await mapLimit([...new Set(commandIds)], CALLS_IN_FLIGHT, async (commandId) => {
        const answer = await dynamodb.send(
          new GetItemCommand({ TableName: tableName, Key: { pk: { S: commandKey(commandId) } } }),
        );
        const at = answer.Item?.readAt?.N;
        if (at) found.set(commandId, Number(at));
      });
      return found;
    },
    async noteRead(commandIds, at) {
      await mapLimit([...new Set(commandIds)], CALLS_IN_FLIGHT, async (commandId) => {
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              pk: { S: commandKey(commandId) },
              readAt: { N: String(Math.round(at)) },
              ttl: { N: String(Math.ceil(at / 1000) + COMMAND_MARK_TTL_SECONDS) },
            },
          }),
        );
      });
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
        if (data) found.set(instanceId, JSON.parse(data) as LaunchRecord);
      });
      return found;
    },
    async write(records) {
      await mapLimit(records, CALLS_IN_FLIGHT, async (record) => {
        record.updatedAt = clock.now();
        await dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: {
              pk: { S: recordKey(record.instanceId) },
              record: { S: JSON.stringify(record) },
              ttl: { N: String(Math.ceil(clock.now() / 1000) + RECORD_TTL_SECONDS) },
            },
          }),
        );
      });
    },
  };
}
