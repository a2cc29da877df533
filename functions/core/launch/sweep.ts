// The sweep: Auto Scaling emits lifecycle events to EventBridge on a best-effort basis
// (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-autoscaling.html),
// so an instance can sit in Pending:Wait on our hook with nobody working on it until the hook's
// heartbeat timeout applies its default result. The sweep finds such instances and puts replay
// payloads on the launch queue; the launch function is level-triggered, so a replay of an
// instance that is in fact being worked on resumes that work rather than repeating it.
import {
  type AutoScalingGroup,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  DescribeWarmPoolCommand,
} from "@aws-sdk/client-auto-scaling";
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import { autoScaling, sqs } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { chunk, collect, paginate } from "../common/concurrency.js";
import { logger } from "../common/powertools.js";
import { LAUNCH_ACTIVITY_PREFIX, LAUNCH_TRANSITION, WAITING_STATES } from "../contract.js";

/** SendMessageBatch takes at most 10 entries. */
export const SQS_BATCH_SIZE = 10;
/** DescribeAutoScalingGroups is asked for at most this many names per call. */
const GROUP_NAMES_PER_CALL = 50;
/** Scaling activities are returned newest first, 100 at most per page. */
const ACTIVITIES_PER_PAGE = 100;
/** Upper bound on activity pages read per group, so one busy group cannot exhaust the invocation. */
const MAX_ACTIVITY_PAGES = 20;
/**
 * The description Auto Scaling gives the activity that launched an instance, e.g.
 * "Launching a new EC2 instance: i-0123456789abcdef0" or, for a warm pool,
 * "Launching a new EC2 instance into warm pool: i-0123456789abcdef0".
 */
const LAUNCH_ACTIVITY = new RegExp(`^${LAUNCH_ACTIVITY_PREFIX}(?: into warm pool)?: (i-[0-9a-zA-Z]+)`);

export interface SweepSettings {
  /** Auto Scaling group names in scope; empty means every group of the account and Region. */
  groups: readonly string[];
  hookName: string;
  queueUrl: string;
  staleAfterSeconds: number;
  dryRun: boolean;
}

export interface StaleInstance {
  instanceId: string;
  group: string;
  /** Seconds since the launch activity started; null when no launch activity was found. */
  waitingSeconds: number | null;
}

export interface SweepReport {
  groups: string[];
  examined: number;
  stale: StaleInstance[];
  enqueued: number;
  dryRun: boolean;
}

export interface ReplayPayload {
  instanceIds: string[];
  autoScalingGroupName: string;
  lifecycleHookName: string;
  source: "sweep";
}

export class EnqueueError extends Error {
  override name = "EnqueueError";
  constructor(
    message: string,
    readonly failed: { instanceId: string; code: string; message: string }[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

interface WaitingInstance {
  instanceId: string;
  group: string;
}

/** Finds the instances stuck on our launch hook and enqueues them for the launch function. */
export async function sweepStaleLaunches(settings: SweepSettings): Promise<SweepReport> {
  const groups = await describeGroups(settings.groups);
  const examinedGroups: string[] = [];
  const stale: StaleInstance[] = [];
  let examined = 0;

  for (const group of groups) {
    const name = group.AutoScalingGroupName ?? "";
    const waiting = await waitingInstances(group);
    if (waiting.length === 0) continue;
    if (!(await hasOurLaunchHook(name, settings.hookName))) {
      logger.debug("Group has waiting instances but not our hook", { group: name, waiting: waiting.length });
      continue;
    }
    examinedGroups.push(name);
    examined += waiting.length;
    const launchTimes = await findLaunchTimes(
      name,
      waiting.map((instance) => instance.instanceId),
    );
    const now = clock.now();
    for (const instance of waiting) {
      const launchedAt = launchTimes.get(instance.instanceId);
      if (launchedAt === undefined) {
        // Older than every activity Auto Scaling still keeps: it has waited long past any threshold.
        logger.warn("No launch activity found for a waiting instance", { ...instance });
        stale.push({ ...instance, waitingSeconds: null });
        continue;
      }
      const waitingSeconds = Math.floor((now - launchedAt) / 1000);
      if (waitingSeconds >= settings.staleAfterSeconds) stale.push({ ...instance, waitingSeconds });
    }
  }

  const enqueued = settings.dryRun ? 0 : await enqueueReplays(settings.queueUrl, settings.hookName, stale);
  return { groups: examinedGroups, examined, stale, enqueued, dryRun: settings.dryRun };
}

async function describeGroups(names: readonly string[]): Promise<AutoScalingGroup[]> {
  const chunks: (string[] | undefined)[] =
    names.length === 0 ? [undefined] : chunk([...names], GROUP_NAMES_PER_CALL);
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
async function waitingInstances(group: AutoScalingGroup): Promise<WaitingInstance[]> {
  const name = group.AutoScalingGroupName ?? "";
  const instances = [...(group.Instances ?? [])];
  if (group.WarmPoolConfiguration) {
    const pages = paginate((NextToken) =>
      autoScaling.send(new DescribeWarmPoolCommand({ AutoScalingGroupName: name, NextToken })),
    );
    instances.push(...(await collect(pages, (page) => page.Instances)));
  }
  const seen = new Set<string>();
  const waiting: WaitingInstance[] = [];
  for (const instance of instances) {
    const id = instance.InstanceId;
    if (!id || seen.has(id) || !WAITING_STATES.has(instance.LifecycleState ?? "")) continue;
    seen.add(id);
    waiting.push({ instanceId: id, group: name });
  }
  return waiting;
}

async function hasOurLaunchHook(group: string, hookName: string): Promise<boolean> {
  const answer = await autoScaling.send(
    new DescribeLifecycleHooksCommand({ AutoScalingGroupName: group, LifecycleHookNames: [hookName] }),
  );
  return (answer.LifecycleHooks ?? []).some(
    (hook) => hook.LifecycleHookName === hookName && hook.LifecycleTransition === LAUNCH_TRANSITION,
  );
}

/** Start time (epoch ms) of the activity that launched each instance, newest activities first. */
async function findLaunchTimes(group: string, instanceIds: string[]): Promise<Map<string, number>> {
  const wanted = new Set(instanceIds);
  const found = new Map<string, number>();
  const pages = paginate(
    (NextToken) =>
      autoScaling.send(
        new DescribeScalingActivitiesCommand({
          AutoScalingGroupName: group,
          MaxRecords: ACTIVITIES_PER_PAGE,
          NextToken,
        }),
      ),
    MAX_ACTIVITY_PAGES,
  );
  for await (const page of pages) {
    for (const activity of page.Activities ?? []) {
      const instanceId = LAUNCH_ACTIVITY.exec(activity.Description ?? "")?.[1];
      if (!instanceId || !wanted.has(instanceId) || found.has(instanceId) || !activity.StartTime) continue;
      found.set(instanceId, activity.StartTime.getTime());
    }
    if (found.size >= wanted.size) break;
  }
  return found;
}

/** Sends one replay payload per instance, ten per SendMessageBatch call; fails on any failed entry. */
async function enqueueReplays(queueUrl: string, hookName: string, stale: StaleInstance[]): Promise<number> {
  const failed: EnqueueError["failed"] = [];
  let enqueued = 0;
  for (const batch of chunk(stale, SQS_BATCH_SIZE)) {
    const entries: SendMessageBatchRequestEntry[] = batch.map((instance, index) => ({
      Id: `${index}-${instance.instanceId}`,
      MessageBody: JSON.stringify(replayPayload(instance, hookName)),
    }));
    const answer = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    enqueued += answer.Successful?.length ?? 0;
    for (const failure of answer.Failed ?? []) {
      const instanceId = batch[Number(failure.Id?.split("-")[0])]?.instanceId ?? failure.Id ?? "";
      failed.push({ instanceId, code: failure.Code ?? "", message: failure.Message ?? "" });
    }
  }
  if (failed.length > 0) {
    const summary = failed.map((entry) => `${entry.instanceId} (${entry.code}: ${entry.message})`).join(", ");
    throw new EnqueueError(
      `Could not enqueue ${failed.length} of ${stale.length} stale instances: ${summary}`,
      failed,
    );
  }
  return enqueued;
}

export function replayPayload(instance: StaleInstance, hookName: string): ReplayPayload {
  return {
    instanceIds: [instance.instanceId],
    autoScalingGroupName: instance.group,
    lifecycleHookName: hookName,
    source: "sweep",
  };
}
