// The sweep. Auto Scaling emits lifecycle events to EventBridge on a best-effort basis
// (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-autoscaling.html): an instance can
// sit in Pending:Wait on our hook, unattended, until the hook's heartbeat timeout applies its default
// result. The sweep puts such instances on the launch queue as replay payloads; the launch step is
// level-triggered, so a replay of an instance already in hand resumes its work instead of repeating it.
import {
  type AutoScalingGroup,
  DescribeAutoScalingGroupsCommand,
  DescribeWarmPoolCommand,
} from "@aws-sdk/client-auto-scaling";
import { autoScaling } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { chunk, collect, paginate } from "../common/concurrency.js";
import { logger } from "../common/powertools.js";
import { coversAll, type SweepConfig } from "../config.js";
import { WAITING_STATES } from "../contract.js";
import { beatDueAt, completedByUs, sameLaunch } from "./action.js";
import { findLaunchActivities, findLaunchHooks } from "./lifecycle.js";
import { enqueueReplays, type NotEnqueued, replayPayload } from "./queue.js";
import { dynamoStore, type LaunchRecord } from "./records.js";
import { ourHookNames } from "./scope.js";

/**
 * A launch record written this recently is in hand: while it registers, sends or waits, its launch
 * message comes back every minute or two and the step rewrites it, so a live launch is never this quiet.
 */
const IN_HAND_MS = 150_000;

/** DescribeAutoScalingGroups is asked for at most this many names per call. */
const GROUP_NAMES_PER_CALL = 50;
export interface StaleInstance {
  instanceId: string;
  group: string;
  /** Seconds since the launch activity started; null when no launch activity was found. */
  waitingSeconds: number | null;
  /** AWS-time ms when the launch activity started, when found. */
  startedAt?: number;
  /** "WarmPool" when the instance is leaving the warm pool. */
  origin?: "WarmPool";
  /** Our hook on its group (the stage's, or its previous release's name). */
  hook: string;
}

export interface SweepReport {
  groups: string[];
  examined: number;
  stale: StaleInstance[];
  /** Stale by age but in hand: a launch record says the launch path works on it, or has completed our action. */
  inHand: string[];
  /** Too young to call lost and without a launch record yet: looked at again when they turn stale. */
  lookAhead: string[];
  enqueued: number;
  dryRun: boolean;
}

export class EnqueueError extends Error {
  override name = "EnqueueError";
  constructor(
    message: string,
    readonly failed: NotEnqueued[],
  ) {
    super(message);
  }
}

/** Finds the instances stuck on our launch hook and enqueues them for the launch function. */
export async function sweepStaleLaunches(config: SweepConfig): Promise<SweepReport> {
  const groups = await describeGroups(config.TARGET_GROUPS);
  const examinedGroups: string[] = [];
  const stale: StaleInstance[] = [];
  const young: StaleInstance[] = [];
  let examined = 0;

  for (const group of groups) {
    const name = group.AutoScalingGroupName ?? "";
    const waiting = await waitingInstances(group);
    if (waiting.length === 0) continue;
    const hook = (await findLaunchHooks(name, ourHookNames(config)))[0]?.name;
    if (!hook) {
      logger.debug("Group has waiting instances but not our hook", { group: name, waiting: waiting.length });
      continue;
    }
    examinedGroups.push(name);
    examined += waiting.length;
    const launches = await findLaunchActivities(
      name,
      waiting.map((instance) => instance.instanceId),
    );
    const now = clock.now();
    for (const instance of waiting) {
      const launch = launches.get(instance.instanceId);
      if (launch === undefined) {
        // Older than every activity Auto Scaling still keeps: it has waited long past any threshold.
        logger.warn("No launch activity found for a waiting instance", { ...instance });
        stale.push({ ...instance, waitingSeconds: null, hook });
        continue;
      }
      const waitingSeconds = Math.floor((now - launch.startedAt) / 1000);
      const found = { ...instance, waitingSeconds, startedAt: launch.startedAt, origin: launch.origin, hook };
      (waitingSeconds >= config.STALE_AFTER_SECONDS ? stale : young).push(found);
    }
  }

  const records = await readRecords([...stale, ...young], config.LEASE_TABLE);
  const now = clock.now();
  const adrift = stale.filter((instance) => !isInHand(records?.get(instance.instanceId), instance, now));
  const unrecorded = records
    ? young.filter((instance) => {
        const record = records.get(instance.instanceId);
        return !record || !sameLaunch(record, instance);
      })
    : [];
  const enqueued = config.DRY_RUN
    ? 0
    : await enqueueStale(config.LAUNCH_QUEUE_URL, [
        ...adrift.map((instance) => ({ payload: replayPayload(instance, "sweep") })),
        ...unrecorded.map((instance) => lookAhead(instance, config.STALE_AFTER_SECONDS)),
      ]);
  return {
    groups: examinedGroups,
    examined,
    stale: adrift,
    inHand: stale.filter((instance) => !adrift.includes(instance)).map((instance) => instance.instanceId),
    lookAhead: unrecorded.map((instance) => instance.instanceId),
    enqueued,
    dryRun: config.DRY_RUN,
  };
}

/**
 * A launch too young to call lost, with no record yet, is looked at again the moment it turns stale,
 * not a whole schedule later: its look-ahead comes back when it does, and the launch step drops it if
 * a record of the launch exists by then (its event arrived). With sweeps a minute apart, a lost launch
 * event waits at most a minute, not a minute plus the threshold.
 */
function lookAhead(instance: StaleInstance, staleAfterSeconds: number) {
  const delaySeconds = Math.max(1, staleAfterSeconds - (instance.waitingSeconds ?? 0));
  return { payload: { ...replayPayload(instance, "sweep"), ifEventLost: true }, delaySeconds };
}

/** The launch records of these instances; undefined without a table (every stale instance is replayed). */
async function readRecords(
  instances: StaleInstance[],
  leaseTable: string,
): Promise<Map<string, LaunchRecord> | undefined> {
  if (!leaseTable) return undefined;
  if (instances.length === 0) return new Map();
  return dynamoStore(leaseTable).read(instances.map((instance) => instance.instanceId));
}

/**
 * With event completion, an instance waits a minute or more while it registers and installs: its
 * launch record says so, and a replay would only cost a heartbeat. An instance whose record says our
 * action was completed waits on another hook (CodeDeploy's launch deployment): not ours either.
 * What remains has no record (its launch event was lost) or a record gone quiet.
 */
function isInHand(record: LaunchRecord | undefined, instance: StaleInstance, now: number): boolean {
  // Our record of this launch, not of an earlier one (a warm-pool instance launches twice).
  if (!record || !sameLaunch(record, instance)) return false;
  if (record.phase === "done") return completedByUs(record);
  return now < inHandUntil(record);
}

/**
 * Until when a launch not done counts as in hand. An install is looked up with gaps of up to 15 minutes
 * (agent/job.ts, nextInstallLook) and a look that finds it running rewrites nothing, so `updatedAt` alone
 * would replay a healthy hour-long install every minute. Its launch message is back by the heartbeat's
 * due time (step.ts), whose step rewrites the record: in hand until then, plus a grace for the message's
 * way back of at most a quarter of the window, so a lost one is replayed before the window lapses.
 */
function inHandUntil(record: LaunchRecord): number {
  const written = (record.updatedAt ?? 0) + IN_HAND_MS;
  if (record.phase !== "installing" || !(record.heartbeatTimeoutSeconds > 0)) return written;
  const grace = Math.min(IN_HAND_MS, (record.heartbeatTimeoutSeconds * 1000) / 4);
  return Math.max(written, beatDueAt(record) + grace);
}

/** The groups in scope: only those named; every group only for the explicit `*`; none for an empty list. */
async function describeGroups(names: readonly string[]): Promise<AutoScalingGroup[]> {
  if (names.length === 0) return [];
  const chunks: (string[] | undefined)[] = coversAll(names)
    ? [undefined]
    : chunk([...names], GROUP_NAMES_PER_CALL);
  const groups: AutoScalingGroup[] = [];
  for (const chunkOfNames of chunks) {
    const pages = paginate((NextToken) =>
      autoScaling.send(
        new DescribeAutoScalingGroupsCommand({
          AutoScalingGroupNames: chunkOfNames,
          MaxRecords: 100,
          NextToken,
        }),
      ),
    );
    groups.push(...(await collect(pages, (page) => page.AutoScalingGroups)));
  }
  return groups;
}

/**
 * Instances of the group held in a launch wait. Instances in a warm pool are not listed with the
 * group; they are read with DescribeWarmPool, and only for groups that have one.
 */
async function waitingInstances(
  group: AutoScalingGroup,
): Promise<Pick<StaleInstance, "instanceId" | "group">[]> {
  const name = group.AutoScalingGroupName ?? "";
  const instances = [...(group.Instances ?? [])];
  if (group.WarmPoolConfiguration) {
    const pages = paginate((NextToken) =>
      autoScaling.send(new DescribeWarmPoolCommand({ AutoScalingGroupName: name, NextToken })),
    );
    instances.push(...(await collect(pages, (page) => page.Instances)));
  }
  const waiting = new Set(
    instances.flatMap((instance) =>
      instance.InstanceId && WAITING_STATES.has(instance.LifecycleState ?? "") ? [instance.InstanceId] : [],
    ),
  );
  return [...waiting].map((instanceId) => ({ instanceId, group: name }));
}

/** Replay payloads on the launch queue; fails on any entry SQS did not take. */
async function enqueueStale(
  queueUrl: string,
  replays: Parameters<typeof enqueueReplays>[1],
): Promise<number> {
  const { enqueued, failed } = await enqueueReplays(queueUrl, replays);
  if (failed.length > 0) {
    const summary = failed.map((entry) => `${entry.instanceId} (${entry.code}: ${entry.message})`).join(", ");
    throw new EnqueueError(
      `Could not enqueue ${failed.length} of ${replays.length} waiting instances: ${summary}`,
      failed,
    );
  }
  return enqueued;
}
