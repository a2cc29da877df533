// The Auto Scaling side of the launch path: lifecycle states, our launch hooks, and completing or
// heartbeating a lifecycle action, a few calls at a time with throttling retried within the budget.
import {
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import { autoScaling, autoScalingLifecycle, backoffDelay } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { chunk, collect, limiter, paginate } from "../common/concurrency.js";
import { isNoActiveAction, isTransient } from "../common/errors.js";
import {
  CODEDEPLOY_HOOK_PREFIX,
  DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
  LAUNCH_ACTIVITY_PREFIX,
  LAUNCH_TRANSITION,
} from "../contract.js";
import type { LaunchRequest } from "./types.js";

/** DescribeAutoScalingInstances takes at most 50 instance ids. */
const MAX_INSTANCE_IDS = 50;
const HOOK_CACHE_MS = 5 * 60_000;

/**
 * Lifecycle state of each instance, and what it was launched from (to name the AMI that bakes an agent
 * in); instances Auto Scaling no longer knows are absent.
 */
export async function describeLifecycleStates(instanceIds: readonly string[]) {
  const states = new Map<string, { lifecycleState: string; imageId?: string; launchTemplate?: string }>();
  for (const ids of chunk([...new Set(instanceIds)], MAX_INSTANCE_IDS)) {
    const instances = await collect(
      paginate((NextToken) =>
        autoScaling.send(
          new DescribeAutoScalingInstancesCommand({
            InstanceIds: ids,
            MaxRecords: MAX_INSTANCE_IDS,
            NextToken,
          }),
        ),
      ),
      (page) => page.AutoScalingInstances,
    );
    for (const instance of instances) {
      if (!instance.InstanceId) continue;
      const template = instance.LaunchTemplate;
      states.set(instance.InstanceId, {
        lifecycleState: instance.LifecycleState ?? "",
        imageId: instance.ImageId || undefined,
        launchTemplate:
          template?.LaunchTemplateName || template?.LaunchTemplateId
            ? `${template.LaunchTemplateName ?? template.LaunchTemplateId} version ${template.Version ?? "$Default"}`
            : instance.LaunchConfigurationName && `launch configuration ${instance.LaunchConfigurationName}`,
      });
    }
  }
  return states;
}

/** Scaling activities are returned newest first, 100 at most per page. */
const ACTIVITIES_PER_PAGE = 100;
/** Upper bound on activity pages read per group, so one busy group cannot exhaust the invocation. */
const MAX_ACTIVITY_PAGES = 20;
/**
 * The description Auto Scaling gives the activity that launched an instance: "Launching a new EC2
 * instance: i-...", "... into warm pool: i-..." (entering the pool) or "... from warm pool: i-..."
 * (leaving it) (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html).
 */
const LAUNCH_ACTIVITY = new RegExp(`^${LAUNCH_ACTIVITY_PREFIX}(?: (into|from) warm pool)?: (i-[0-9a-zA-Z]+)`);

/**
 * The latest launch activity of each instance: when it, and with it the launch lifecycle action,
 * began (AWS-time ms), and "WarmPool" when the instance leaves the warm pool. Auto Scaling keeps
 * activities for six weeks; an instance whose activity is not among the pages read is absent.
 */
export async function findLaunchActivities(group: string, instanceIds: readonly string[]) {
  const wanted = new Set(instanceIds);
  const found = new Map<string, { startedAt: number; origin?: "WarmPool" }>();
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
      const match = LAUNCH_ACTIVITY.exec(activity.Description ?? "");
      const instanceId = match?.[2];
      if (!instanceId || !wanted.has(instanceId) || found.has(instanceId) || !activity.StartTime) continue;
      found.set(instanceId, {
        startedAt: activity.StartTime.getTime(),
        origin: match?.[1] === "from" ? "WarmPool" : undefined,
      });
    }
    if (found.size >= wanted.size) break;
  }
  return found;
}

export interface LaunchHook {
  name: string;
  heartbeatTimeoutSeconds: number;
}

const hookCache = new Map<string, { at: number; hooks: LaunchHook[] }>();

/**
 * The launch hooks of a group that this service may complete: those of the configured names (the
 * stage's, and its previous release's), or, when none is configured, every one not CodeDeploy's own.
 */
export async function findLaunchHooks(group: string, names: readonly string[]): Promise<LaunchHook[]> {
  return (await describeLaunchHooks(group)).filter((hook) =>
    names.length > 0 ? names.includes(hook.name) : !hook.name.startsWith(CODEDEPLOY_HOOK_PREFIX),
  );
}

/** Every launch hook of a group, CodeDeploy's own included (cached a few minutes per container). */
export async function describeLaunchHooks(group: string): Promise<LaunchHook[]> {
  const cached = hookCache.get(group);
  if (cached && clock.now() - cached.at < HOOK_CACHE_MS) return cached.hooks;
  const response = await autoScaling.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: group }));
  const hooks = (response.LifecycleHooks ?? [])
    .filter((hook) => hook.LifecycleTransition === LAUNCH_TRANSITION && hook.LifecycleHookName)
    .map((hook) => ({
      name: hook.LifecycleHookName ?? "",
      heartbeatTimeoutSeconds: hook.HeartbeatTimeout ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
    }));
  hookCache.set(group, { at: clock.now(), hooks });
  return hooks;
}

export function clearHookCache(): void {
  hookCache.clear();
}

/** A launch's lifecycle action (a launch request or record): the token is absent on replay. */
type LifecycleAction = Pick<LaunchRequest, "group" | "hook" | "instanceId" | "token">;

/** The one lifecycle action a call is about: by its token when an event brought one, else by instance. */
function target(action: LifecycleAction) {
  return {
    AutoScalingGroupName: action.group,
    LifecycleHookName: action.hook ?? "",
    ...(action.token ? { LifecycleActionToken: action.token } : { InstanceId: action.instanceId }),
  };
}

/** A call about our action: false when the action is no longer active (completed, timed out, gone). */
async function whileActive(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return true;
  } catch (error) {
    if (isNoActiveAction(error)) return false;
    throw error;
  }
}

export function completeAction(action: LifecycleAction, result: "CONTINUE" | "ABANDON"): Promise<boolean> {
  const command = new CompleteLifecycleActionCommand({ ...target(action), LifecycleActionResult: result });
  return whileActive(() => autoScalingLifecycle.send(command));
}

/** Restarts the hook's heartbeat window. */
export function recordHeartbeat(action: LifecycleAction): Promise<boolean> {
  const command = new RecordLifecycleActionHeartbeatCommand(target(action));
  return whileActive(() => autoScalingLifecycle.send(command));
}

/**
 * The lifecycle calls of one invocation, a few at a time: Auto Scaling throttles completions and
 * heartbeats when "too many instances launch too quickly"
 * (https://docs.aws.amazon.com/codedeploy/latest/userguide/troubleshooting-auto-scaling.html).
 * Throttling beyond the SDK's own retries is retried (unless `retry` is false; spaced by `retryDelayMs`,
 * by default a capped backoff) until the budget runs out, then answered "throttled" for the next step
 * rather than failing the batch; a call whose turn comes after the budget is not tried at all.
 */
export function lifecycleCalls(inFlight: number, deadline: number) {
  const slots = limiter(inFlight);
  return <T>(
    call: () => Promise<T>,
    options: { retry?: boolean; retryDelayMs?: () => number } = {},
  ): Promise<T | "throttled"> =>
    slots(async () => {
      for (let attempt = 0; clock.now() < deadline; attempt += 1) {
        try {
          return await call();
        } catch (error) {
          if (!isTransient(error)) throw error;
          const wait = options.retryDelayMs?.() ?? backoffDelay(attempt, 1_000, 15_000);
          if (options.retry === false || clock.now() + wait >= deadline) break;
          await clock.sleep(wait);
        }
      }
      return "throttled";
    });
}

/** How `inTurns` takes its items: whose turn it is, what one try does, how long a throttled one waits. */
export interface Turns<T, R> {
  urgency: (item: T, now: number) => number;
  retryMs: (item: T, now: number) => number;
  /** AWS-time ms after which no try starts. */
  deadline: number;
  attempt: (item: T) => Promise<R | "throttled">;
  answered: (item: T, answer: R) => void;
}

/**
 * One try at a time, each going to the item most urgent at that moment: a throttled item waits its
 * retry time and goes back in line, so one that grew late meanwhile is tried next. Answers the items
 * still in line when the budget ran out.
 */
export async function inTurns<T, R>(items: readonly T[], turns: Turns<T, R>): Promise<T[]> {
  const line = [...items];
  while (line.length > 0) {
    const now = clock.now();
    line.sort((a, b) => turns.urgency(b, now) - turns.urgency(a, now));
    const item = line.shift() as T;
    const answer = await turns.attempt(item);
    if (answer !== "throttled") {
      turns.answered(item, answer);
      continue;
    }
    line.push(item);
    const wait = turns.retryMs(item, clock.now());
    if (clock.now() + wait >= turns.deadline) break;
    await clock.sleep(wait);
  }
  return line;
}
