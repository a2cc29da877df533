// Reading an install command's result costs one SSM call for all its instances, and each instance's
// end comes as its own event. These two make one read serve as many of them as it can.
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import type { AgentSettings } from "../agent/types.js";
import { mapLimit } from "../common/concurrency.js";
import type { Lease } from "../common/lease.js";
import { type InHand, newHand } from "./in-hand.js";
import { settleRead } from "./installs.js";
import type { LaunchBook } from "./records.js";

/** Events of one command within this long of its last read wait for the next read. */
const READ_GAP_MS = 5_000;
const CALLS_IN_FLIGHT = 10;

/**
 * The installs of one command end over tens of seconds, each with its own event, and launch messages
 * come back when an install is overdue. A command read in the last READ_GAP_MS is not read again:
 * its instances wait for the gap to pass (an event is handed back for that long), so the events and
 * messages of those seconds share the next read (the mark is in the lease table, shared by all
 * invocations). Returns the command events to hand back, and after how many seconds.
 */
export async function spaceReads(
  items: readonly InHand[],
  now: number,
  book: LaunchBook,
  overdueMs: number,
): Promise<Map<string, number>> {
  const deferred = new Map<string, number>();
  const toRead = items.filter(
    ({ record, readNow }) =>
      record.phase === "installing" && (readNow || now - (record.commandSentAt ?? 0) >= overdueMs),
  );
  if (toRead.length === 0) return deferred;
  const reads = await book.readsOf(toRead.map(({ record }) => record.commandId ?? ""));
  for (const item of toRead) {
    const readAt = reads.get(item.record.commandId ?? "");
    if (readAt === undefined || now - readAt >= READ_GAP_MS) continue;
    item.heldUntil = readAt + READ_GAP_MS;
    if (item.readNow)
      deferred.set(item.record.instanceId, Math.max(1, Math.ceil((item.heldUntil - now) / 1000)));
    item.readNow = false;
  }
  return deferred;
}

/**
 * One read of a command shows every instance of it that has ended: those not in hand are taken in
 * hand and settled now (when their record still waits on that command and no one else holds them),
 * so the events still on their way for them find their launches done and cost no SSM call.
 */
export async function takeSettled(
  ended: Map<string, CommandInvocation>,
  context: { book: LaunchBook; lease: Lease; correlationId: string; deadline: number; leaseUntil?: number },
  settings: AgentSettings,
  expected: () => Promise<string>,
): Promise<InHand[]> {
  const records = await context.book.read([...ended.keys()]);
  const candidates = [...ended].flatMap(([instanceId, invocation]) => {
    const record = records.get(instanceId);
    return record?.phase === "installing" && record.commandId === invocation.CommandId
      ? [{ item: newHand(record), invocation }]
      : [];
  });
  const leased = await mapLimit(candidates, CALLS_IN_FLIGHT, ({ item }) =>
    context.lease.acquire(
      `agent#${item.record.instanceId}`,
      context.correlationId,
      context.leaseUntil ?? context.deadline,
    ),
  );
  const taken = candidates.filter((_, index) => leased[index]);
  await settleRead(taken, settings, await expected());
  return taken.map(({ item }) => item);
}
