// Event completion's installs: one command of the stage's install-and-verify document to every
// instance of the batch that is ready, and the reading of its result once SSM says it ended (or once
// it is overdue). The document's verdict (verdicts.ts) decides: verified, retried, or failed.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { type CommandInvocation, ListCommandInvocationsCommand } from "@aws-sdk/client-ssm";
import { versionSatisfies } from "../agent/scripts.js";
import {
  COMMAND_DELIVERY_TIMEOUT_SECONDS,
  IN_FLIGHT_STATUSES,
  installCommand,
  instancesRefused,
  listInvocations,
  requestedAt,
  sendCommand,
} from "../agent/ssm-commands.js";
import type { AgentSettings } from "../agent/types.js";
import { judgeFailedCommand, judgeInstall, type Verdict } from "../agent/verdicts.js";
import { noteLatestInstalled } from "../agent/versions.js";
import { ssm } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { chunk, mapLimit } from "../common/concurrency.js";
import { errorMessage, isTransient } from "../common/errors.js";
import { logger, metrics } from "../common/powertools.js";
import { MAX_INSTANCE_IDS_PER_COMMAND, METRIC } from "../contract.js";
import type { InHand } from "./in-hand.js";
import { describeLifecycleStates } from "./lifecycle.js";
import { reportBakedAgent } from "./report.js";

/** Right after SendCommand an invocation may not be listed yet (eventual consistency). */
const INVOCATION_VISIBILITY_GRACE_MS = 60_000;
/** A cut-off invocation may have sent its install just before it ended: looked up from a minute earlier. */
const SEND_LOOKBACK_MS = 60_000;
const COMMAND_READS_IN_FLIGHT = 5;
/** A read that failed transiently is tried again this soon. */
const READ_RETRY_MS = 5_000;

/**
 * A record marked "sending" whose invocation was cut off: the install may have gone out. It is looked
 * up on the instance (one call per instance, only in this rare case) and followed, never sent twice.
 */
export async function recoverInterruptedSends(
  items: readonly InHand[],
  installDocument: string,
): Promise<void> {
  const interrupted = items.filter(({ record }) => record.sendingSince && record.phase !== "installing");
  await mapLimit(interrupted, COMMAND_READS_IN_FLIGHT, async ({ record }) => {
    const answer = await ssm.send(
      new ListCommandInvocationsCommand({
        InstanceId: record.instanceId,
        Filters: [
          { key: "DocumentName", value: installDocument },
          {
            key: "InvokedAfter",
            value: new Date((record.sendingSince ?? 0) - SEND_LOOKBACK_MS).toISOString(),
          },
        ],
        MaxResults: 50,
      }),
    );
    const newest = (answer.CommandInvocations ?? []).sort((a, b) => requestedAt(b) - requestedAt(a))[0];
    if (!newest?.CommandId || record.installCommandIds.includes(newest.CommandId)) {
      // A command just sent may not be listed yet (eventual consistency): only once that grace has
      // passed with nothing listed is the install known never to have gone out.
      if (clock.now() - (record.sendingSince ?? 0) >= INVOCATION_VISIBILITY_GRACE_MS)
        record.sendingSince = undefined;
      return;
    }
    record.sendingSince = undefined;
    markSent(record, newest.CommandId, requestedAt(newest) || clock.now());
    record.reason = `following the install sent just before an invocation was cut off (command ${newest.CommandId})`;
  });
}

/**
 * Reads each ended (or overdue) install once per command, and settles every instance of it in hand.
 * Returns the commands read, and their other ended invocations, of instances not in hand: their events
 * may still be on the way, and the caller can settle them now with no further SSM call.
 */
export async function readEndedInstalls(
  items: readonly InHand[],
  settings: AgentSettings,
  overdueMs: number,
  expected: () => Promise<string>,
): Promise<{ others: Map<string, CommandInvocation>; read: string[] }> {
  const now = clock.now();
  const others = new Map<string, CommandInvocation>();
  const installing = items.filter(({ record }) => record.phase === "installing" && record.commandId);
  const due = new Set(
    installing
      .filter(
        (item) =>
          item.heldUntil === undefined &&
          (item.readNow || now - (item.record.commandSentAt ?? 0) >= overdueMs),
      )
      .map(({ record }) => record.commandId ?? ""),
  );
  if (due.size === 0) return { others, read: [] };
  const version = await expected();
  const inHand = new Set(items.map(({ record }) => record.instanceId));
  const read: string[] = [];
  await mapLimit([...due], COMMAND_READS_IN_FLIGHT, async (commandId) => {
    let invocations: Map<string, CommandInvocation>;
    try {
      invocations = await listInvocations(commandId, true);
    } catch (error) {
      if (!isTransient(error)) throw error;
      // Throttled past the SDK's retries: its instances are looked at again on their next delivery.
      logger.warn("ListCommandInvocations failed transiently; read on the next delivery", {
        commandId,
        error: errorMessage(error),
      });
      for (const item of installing.filter(({ record }) => record.commandId === commandId))
        item.heldUntil = clock.now() + READ_RETRY_MS;
      return;
    }
    read.push(commandId);
    for (const item of installing.filter(({ record }) => record.commandId === commandId)) {
      const invocation = invocations.get(item.record.instanceId);
      if (invocation && !IN_FLIGHT_STATUSES.has(invocation.Status ?? "Pending"))
        settle(item, invocation, settings, version);
      else if (!invocation && clock.now() - (item.record.commandSentAt ?? now) > neverListedMs()) {
        const why = `command ${commandId} never showed an invocation for this instance`;
        apply(item, judgeFailedCommand(why, true, item.record.attempts, settings.installAttempts), version);
      }
    }
    for (const [instanceId, invocation] of invocations) {
      if (!inHand.has(instanceId) && !IN_FLIGHT_STATUSES.has(invocation.Status ?? "Pending"))
        others.set(instanceId, invocation);
    }
  });
  await nameBakedAgents(installing);
  return { others, read };
}

/** Settles instances taken in hand after their command was read (readEndedInstalls' `others`). */
export async function settleRead(
  items: readonly { item: InHand; invocation: CommandInvocation }[],
  settings: AgentSettings,
  expected: string,
): Promise<void> {
  for (const { item, invocation } of items) settle(item, invocation, settings, expected);
  await nameBakedAgents(items.map(({ item }) => item));
}

function neverListedMs(): number {
  return INVOCATION_VISIBILITY_GRACE_MS + COMMAND_DELIVERY_TIMEOUT_SECONDS * 1000;
}

function settle(
  item: InHand,
  invocation: CommandInvocation,
  settings: AgentSettings,
  expected: string,
): void {
  const { record } = item;
  const judgement = judgeInstall(invocation, settings, record.attempts, expected);
  if (judgement.after?.version) record.agentVersion = judgement.after.version;
  if (judgement.before?.state === "running") record.runningBefore = judgement.before.version || "unknown";
  if (judgement.installed && !settings.agentVersion)
    noteLatestInstalled(settings.agentPackage, judgement.after?.version);
  for (const metric of judgement.metrics ?? []) metrics.addMetric(metric, MetricUnit.Count, 1);
  // Nothing was installed while a deployment or another install ran there: that costs no attempt.
  if ("next" in judgement.verdict && judgement.verdict.retryAfterMs) record.attempts -= 1;
  apply(item, judgement.verdict, expected);
}

function apply(item: InHand, verdict: Verdict, expected: string): void {
  const { record } = item;
  record.reason = verdict.reason;
  record.expectedVersion = expected;
  if ("finish" in verdict) {
    item.finish = {
      ok: verdict.finish === "VERIFIED" || verdict.finish === "INSTALLED",
      reason: verdict.reason,
    };
    return;
  }
  // A failed install with attempts left is retried at once; a busy instance after the wait.
  record.phase = "waiting";
  record.retryAt = clock.now() + (verdict.retryAfterMs ?? 0);
}

/** Ready now: registered in this invocation, or a retry whose time has come. */
export function installsToSend(items: readonly InHand[], now: number): InHand[] {
  const ready = items.filter(
    (item) =>
      !item.finish &&
      item.record.phase !== "done" &&
      (item.sendNow || (item.record.phase === "waiting" && (item.record.retryAt ?? 0) <= now)),
  );
  for (const { record } of ready) record.sendingSince = now;
  return ready;
}

/** One command per 50 ready instances; those SSM refuses wait for registration again. */
export async function sendInstalls(
  items: readonly InHand[],
  settings: AgentSettings,
  expected: string,
  correlationId: string,
): Promise<void> {
  const comment = `agentfix install ${correlationId}`.slice(0, 100);
  for (const batch of chunk(items, MAX_INSTANCE_IDS_PER_COMMAND))
    await send(batch, settings, expected, comment);
}

async function send(
  items: InHand[],
  settings: AgentSettings,
  expected: string,
  comment: string,
): Promise<void> {
  const ids = items.map(({ record }) => record.instanceId);
  try {
    const commandId = await sendCommand(installCommand(settings, ids, comment, expected));
    metrics.addMetric(METRIC.installsSent, MetricUnit.Count, items.length);
    for (const { record } of items) {
      markSent(record, commandId, clock.now());
      record.reason = `installing ${settings.agentPackage} (attempt ${record.attempts}, command ${commandId})`;
    }
  } catch (error) {
    if (isTransient(error)) {
      // Throttled or a server error past the SDK's retries: the command may or may not have gone out.
      // The records stay marked "sending": the next look finds it on the instance, or sends it then.
      logger.warn("SendCommand failed transiently; the install is looked up or sent on the next look", {
        instanceIds: ids,
        error: errorMessage(error),
      });
      for (const { record } of items)
        record.reason = "the install could not be sent yet (SSM throttled or failed)";
      return;
    }
    const refused = instancesRefused(error, ids);
    if (!refused) throw error;
    const rest = items.filter(({ record }) => !refused.includes(record.instanceId));
    for (const item of items.filter((candidate) => !rest.includes(candidate))) {
      item.record.phase = "registering";
      item.record.sendingSince = undefined;
      item.record.reason =
        "SSM does not accept commands for it yet (InvalidInstanceId); waiting for registration";
    }
    if (rest.length > 0) await send(rest, settings, expected, comment);
  }
}

function markSent(record: InHand["record"], commandId: string, at: number): void {
  record.phase = "installing";
  record.commandId = commandId;
  record.commandSentAt = at;
  record.sendingSince = undefined;
  record.retryAt = undefined;
  record.attempts += 1;
  record.installCommandIds.push(commandId);
}

/**
 * An instance that started an outdated agent at boot names its AMI (one Auto Scaling call for the
 * few such instances): CodeDeploy's launch deployment may pick that agent up before it is replaced.
 */
async function nameBakedAgents(items: readonly InHand[]): Promise<void> {
  const baked = items.filter(
    ({ record }) =>
      record.origin !== "WarmPool" &&
      !record.bakedAgent &&
      record.runningBefore &&
      record.expectedVersion &&
      !versionSatisfies(record.runningBefore, record.expectedVersion),
  );
  if (baked.length === 0) return;
  const states = await describeLifecycleStates(baked.map(({ record }) => record.instanceId));
  for (const { record } of baked) {
    const report = reportBakedAgent(
      { instanceId: record.instanceId, group: record.group, source: "event" },
      {
        instanceId: record.instanceId,
        status: "VERIFIED",
        reason: record.reason,
        installCommandIds: record.installCommandIds,
        verifyCommandIds: [],
        installed: true,
        runningBefore: record.runningBefore,
        expectedVersion: record.expectedVersion,
      },
      states.get(record.instanceId),
    );
    if (report) record.bakedAgent = report;
  }
}
