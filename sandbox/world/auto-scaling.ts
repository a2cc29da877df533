import { LAUNCH_TRANSITION, TERMINATE_TRANSITION, WAITING_STATES } from "../../functions/core/contract.js";
import { createInstance, type ImageProfile, type Instance } from "./instances.js";
import type { Distribution } from "./random.js";
import type { TimerHandle } from "./scheduler.js";
import { ACCOUNT_ID, AwsServiceError } from "./service-error.js";
import type { World } from "./world.js";

export interface LifecycleHook {
  name: string;
  groupName: string;
  transition: string;
  heartbeatTimeout: number;
  defaultResult: "CONTINUE" | "ABANDON";
  globalTimeout: number;
  notificationMetadata?: string;
  notificationTargetArn?: string;
  roleArn?: string;
}

export type CompletedBy = "api" | "codedeploy" | "timeout" | "terminated";

export interface LifecycleAction {
  token: string;
  hookName: string;
  groupName: string;
  instanceId: string;
  startedAt: number;
  heartbeatDeadline: number;
  globalDeadline: number;
  heartbeats: number;
  completed?: { result: "CONTINUE" | "ABANDON"; at: number; by: CompletedBy };
  timer?: TimerHandle;
}

export interface ScalingActivity {
  ActivityId: string;
  AutoScalingGroupName: string;
  AutoScalingGroupARN: string;
  Description: string;
  Cause: string;
  StartTime: number;
  EndTime?: number;
  StatusCode: string;
  StatusMessage?: string;
  Progress: number;
  Details: string;
  instanceId?: string;
}

export interface AutoScalingGroup {
  name: string;
  arn: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  createdAt: number;
  image: ImageProfile;
  availabilityZones: string[];
  hooks: Map<string, LifecycleHook>;
  instances: Set<string>;
  tags: Record<string, string>;
  /** Consecutive launches that ended abandoned: Auto Scaling slows down relaunching. */
  consecutiveFailures: number;
  nextLaunchAt: number;
  launchTimer?: TimerHandle;
  lastCapacityCause?: string;
}

export interface GroupSpec {
  name: string;
  image: ImageProfile;
  minSize?: number;
  maxSize?: number;
  desiredCapacity?: number;
  availabilityZones?: string[];
  tags?: Record<string, string>;
}

export interface AutoScalingOptions {
  /** AWS seconds from launch to the lifecycle hook's Pending:Wait. */
  bootSeconds?: Distribution;
  /** AWS seconds from Pending:Proceed to InService. */
  proceedSeconds?: Distribution;
  /** AWS seconds Terminating lasts. */
  terminateSeconds?: Distribution;
  /** First relaunch delay after a failed launch, doubled per consecutive failure, capped at 300 s. */
  relaunchBackoffSeconds?: number;
}

function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/**
 * EC2 Auto Scaling: groups, launch lifecycle hooks and their actions, scaling activities.
 * Lifecycle semantics follow https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html:
 * every launch hook gets its own action (token) at once; the instance stays in Pending:Wait until every
 * action is completed with CONTINUE; one ABANDON (or a heartbeat timeout whose default result is
 * ABANDON) terminates it and the group launches a replacement.
 */
export class AutoScalingModel {
  readonly groups = new Map<string, AutoScalingGroup>();
  readonly actions: LifecycleAction[] = [];
  readonly activities: ScalingActivity[] = [];
  private readonly launchListeners = new Set<(action: LifecycleAction, instance: Instance) => void>();
  private readonly activityByInstance = new Map<string, ScalingActivity>();
  /** Every activity of an instance (launch, termination), for updates without scanning them all. */
  private readonly activitiesOfInstance = new Map<string, ScalingActivity[]>();
  private readonly actionsByInstance = new Map<string, LifecycleAction[]>();
  private readonly actionsByToken = new Map<string, LifecycleAction>();
  private readonly givenTokens = new Map<string, string>();

  constructor(
    private readonly world: World,
    private readonly options: AutoScalingOptions = {},
  ) {}

  /** The lifecycle actions of one instance (one per launch hook). */
  actionsOf(instanceId: string): LifecycleAction[] {
    return this.actionsByInstance.get(instanceId) ?? [];
  }

  /** Called for every launch lifecycle action as it starts (CodeDeploy's hook, the event bus). */
  onLaunchAction(listener: (action: LifecycleAction, instance: Instance) => void): void {
    this.launchListeners.add(listener);
  }

  createGroup(spec: GroupSpec): AutoScalingGroup {
    if (this.groups.has(spec.name)) {
      throw new AwsServiceError(
        "AlreadyExists",
        `AutoScalingGroup by this name already exists - A group with the name ${spec.name} already exists`,
      );
    }
    const group: AutoScalingGroup = {
      name: spec.name,
      arn: `arn:aws:autoscaling:${this.world.region}:${ACCOUNT_ID}:autoScalingGroup:${this.world.rng.fork(`group:${spec.name}`).uuid()}:autoScalingGroupName/${spec.name}`,
      minSize: spec.minSize ?? 0,
      maxSize: spec.maxSize ?? Math.max(10, (spec.desiredCapacity ?? 0) * 2),
      desiredCapacity: 0,
      createdAt: this.world.now(),
      image: spec.image,
      availabilityZones: spec.availabilityZones ?? [`${this.world.region}a`, `${this.world.region}b`],
      hooks: new Map(),
      instances: new Set(),
      tags: spec.tags ?? {},
      consecutiveFailures: 0,
      nextLaunchAt: 0,
    };
    this.groups.set(spec.name, group);
    if (spec.desiredCapacity) this.setDesiredCapacity(spec.name, spec.desiredCapacity);
    return group;
  }

  group(name: string): AutoScalingGroup {
    const group = this.groups.get(name);
    if (!group)
      throw new AwsServiceError(
        "ValidationError",
        `AutoScalingGroup name not found - AutoScalingGroup ${name} not found`,
      );
    return group;
  }

  putLifecycleHook(input: {
    groupName: string;
    hookName: string;
    transition?: string;
    heartbeatTimeout?: number;
    defaultResult?: string;
    notificationMetadata?: string;
    notificationTargetArn?: string;
    roleArn?: string;
  }): LifecycleHook {
    const group = this.group(input.groupName);
    const existing = group.hooks.get(input.hookName);
    const transition = input.transition ?? existing?.transition;
    if (!transition) {
      throw new AwsServiceError(
        "ValidationError",
        "LifecycleTransition must be specified when creating a lifecycle hook",
      );
    }
    if (transition !== LAUNCH_TRANSITION && transition !== TERMINATE_TRANSITION) {
      throw new AwsServiceError("ValidationError", `Invalid Lifecycle Transition ${transition}`);
    }
    const heartbeatTimeout = input.heartbeatTimeout ?? existing?.heartbeatTimeout ?? 3600;
    if (heartbeatTimeout < 30 || heartbeatTimeout > 7200) {
      throw new AwsServiceError(
        "ValidationError",
        `Heartbeat timeout ${heartbeatTimeout} is out of range, it must be between 30 and 7200 seconds`,
      );
    }
    const defaultResult = input.defaultResult ?? existing?.defaultResult ?? "ABANDON";
    if (defaultResult !== "CONTINUE" && defaultResult !== "ABANDON") {
      throw new AwsServiceError("ValidationError", `Invalid default result ${defaultResult}`);
    }
    const hook: LifecycleHook = {
      name: input.hookName,
      groupName: group.name,
      transition,
      heartbeatTimeout,
      defaultResult,
      // "The maximum is 172800 seconds (48 hours) or 100 times HeartbeatTimeout, whichever is smaller."
      globalTimeout: Math.min(172_800, 100 * heartbeatTimeout),
      notificationMetadata: input.notificationMetadata ?? existing?.notificationMetadata,
      notificationTargetArn: input.notificationTargetArn ?? existing?.notificationTargetArn,
      roleArn: input.roleArn ?? existing?.roleArn,
    };
    group.hooks.set(hook.name, hook);
    return hook;
  }

  setDesiredCapacity(groupName: string, desired: number, cause?: string): void {
    const group = this.group(groupName);
    if (desired > group.maxSize) {
      throw new AwsServiceError(
        "ValidationError",
        `New SetDesiredCapacity value ${desired} is above max value ${group.maxSize} for the AutoScaling group.`,
      );
    }
    if (desired < group.minSize) {
      throw new AwsServiceError(
        "ValidationError",
        `New SetDesiredCapacity value ${desired} is below min value ${group.minSize} for the AutoScaling group.`,
      );
    }
    const at = isoSeconds(this.world.now());
    group.lastCapacityCause = `At ${at} a user request explicitly set group desired capacity changing the desired capacity from ${group.desiredCapacity} to ${desired}.`;
    if (cause) group.lastCapacityCause = cause;
    group.desiredCapacity = desired;
    this.world.trace.record({
      at: this.world.now(),
      kind: "group.capacity",
      groupName,
      message: `${groupName}: desired capacity ${desired}`,
    });
    this.reconcile(group);
  }

  /** Instances that count toward capacity: everything not on its way out. */
  liveInstances(group: AutoScalingGroup): Instance[] {
    return [...group.instances]
      .map((id) => this.world.instance(id))
      .filter((instance) => !instance.terminated && !instance.lifecycleState.startsWith("Terminating"));
  }

  private reconcile(group: AutoScalingGroup): void {
    const live = this.liveInstances(group);
    if (live.length > group.desiredCapacity) {
      // Scale in: instances still launching go first, then the newest.
      const victims = [...live]
        .sort((a, b) => {
          const pendingA = a.lifecycleState.startsWith("Pending") ? 0 : 1;
          const pendingB = b.lifecycleState.startsWith("Pending") ? 0 : 1;
          return pendingA - pendingB || b.launchedAt - a.launchedAt;
        })
        .slice(0, live.length - group.desiredCapacity);
      for (const instance of victims) this.terminate(instance, "scale-in");
      return;
    }
    const missing = group.desiredCapacity - live.length;
    if (missing <= 0) return;
    const now = this.world.now();
    if (now < group.nextLaunchAt) {
      if (!group.launchTimer) {
        group.launchTimer = this.world.scheduler.after(group.nextLaunchAt - now, () => {
          group.launchTimer = undefined;
          this.reconcile(group);
        });
      }
      return;
    }
    const before = live.length;
    for (let index = 0; index < missing; index++) this.launch(group, before, group.desiredCapacity);
  }

  private launch(
    group: AutoScalingGroup,
    capacityBefore: number,
    capacityAfter: number,
    given: { id?: string; tokens?: Record<string, string> } = {},
  ): Instance {
    const ordinal = this.world.nextOrdinal(`launch:${group.name}`);
    const rng = this.world.rng.fork(`instance:${group.name}:${ordinal}`);
    const now = this.world.now();
    const platform = rng.chance(group.image.windowsShare ?? 0) ? "Windows" : "Linux";
    // A stream of its own, so that a share leaves every other draw of the instance as it was.
    const share = group.image.bakedAgentShare;
    const baked =
      share === undefined || this.world.rng.fork(`baked-agent:${group.name}:${ordinal}`).chance(share)
        ? group.image.bakedAgent
        : null;
    const instance = createInstance({
      id: given.id ?? `i-${rng.hex(17)}`,
      groupName: group.name,
      platform,
      imageId: group.image.imageId,
      availabilityZone: rng.pick(group.availabilityZones),
      launchedAt: now,
      lifecycleState: "Pending",
      agent: baked
        ? { package: baked.package ?? "AWSCodeDeployAgent", version: baked.version, running: baked.running }
        : { package: null, version: null, running: false },
    });
    this.world.addInstance(instance);
    group.instances.add(instance.id);
    const activity = this.addActivity(group, {
      Description: `Launching a new EC2 instance: ${instance.id}`,
      Cause:
        `${group.lastCapacityCause ?? ""}  At ${isoSeconds(now)} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from ${capacityBefore} to ${capacityAfter}.`.trim(),
      StatusCode: "InProgress",
      Progress: 30,
      instanceId: instance.id,
      Details: JSON.stringify({
        "Subnet ID": "subnet-0sandbox",
        "Availability Zone": instance.availabilityZone,
      }),
    });
    this.activityByInstance.set(instance.id, activity);
    this.world.trace.record({
      at: now,
      kind: "instance.launched",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} launched in ${group.name} (${platform}, agent ${baked ? `${baked.version}${baked.running ? "" : " stopped"}` : "none"})`,
    });
    this.world.ssm.scheduleRegistration(instance, rng, group.image);
    this.world.scheduler.after(rng.draw(this.options.bootSeconds ?? { min: 1, max: 3 }) * 1000, () =>
      this.enterLaunchHooks(group, instance),
    );
    return instance;
  }

  private enterLaunchHooks(group: AutoScalingGroup, instance: Instance): void {
    if (instance.terminated || instance.lifecycleState !== "Pending") return;
    const hooks = [...group.hooks.values()].filter((hook) => hook.transition === LAUNCH_TRANSITION);
    if (hooks.length === 0) {
      this.proceed(group, instance);
      return;
    }
    const now = this.world.now();
    this.setState(instance, "Pending:Wait");
    instance.milestones.pendingWait = now;
    const activity = this.activityByInstance.get(instance.id);
    if (activity) activity.StatusCode = "MidLifecycleAction";
    const started: LifecycleAction[] = [];
    for (const hook of hooks) {
      const action: LifecycleAction = {
        token:
          this.givenTokens.get(`${instance.id}:${hook.name}`) ??
          this.world.rng.fork(`token:${instance.id}:${hook.name}`).uuid(),
        hookName: hook.name,
        groupName: group.name,
        instanceId: instance.id,
        startedAt: now,
        heartbeatDeadline: now + hook.heartbeatTimeout * 1000,
        globalDeadline: now + hook.globalTimeout * 1000,
        heartbeats: 0,
      };
      this.actions.push(action);
      this.actionsByToken.set(action.token, action);
      const ofInstance = this.actionsByInstance.get(instance.id) ?? [];
      ofInstance.push(action);
      this.actionsByInstance.set(instance.id, ofInstance);
      this.armTimeout(action);
      started.push(action);
    }
    this.world.trace.record({
      at: now,
      kind: "instance.pending-wait",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} Pending:Wait on ${hooks.map((hook) => hook.name).join(", ")}`,
    });
    // Auto Scaling "sends notifications for all of the hooks at once".
    for (const action of started) for (const listener of this.launchListeners) listener(action, instance);
  }

  private armTimeout(action: LifecycleAction): void {
    action.timer?.cancel();
    const deadline = Math.min(action.heartbeatDeadline, action.globalDeadline);
    action.timer = this.world.scheduler.after(Math.max(0, deadline - this.world.now()), () => {
      if (action.completed) return;
      const hook = this.groups.get(action.groupName)?.hooks.get(action.hookName);
      this.world.trace.record({
        at: this.world.now(),
        kind: "hook.timeout",
        instanceId: action.instanceId,
        groupName: action.groupName,
        message: `${action.instanceId} heartbeat timeout on ${action.hookName}: ${hook?.defaultResult ?? "ABANDON"}`,
        data: { hookName: action.hookName },
      });
      this.finishAction(action, hook?.defaultResult ?? "ABANDON", "timeout");
    });
  }

  /** The action an API call names by token or instance id, or the ValidationError AWS returns. */
  findActiveAction(input: {
    groupName: string;
    hookName: string;
    token?: string;
    instanceId?: string;
  }): LifecycleAction {
    const group = this.group(input.groupName);
    if (!group.hooks.has(input.hookName)) {
      throw new AwsServiceError(
        "ValidationError",
        `No Lifecycle Hook found with name ${input.hookName} for group ${input.groupName}`,
      );
    }
    const candidates = input.token
      ? [this.actionsByToken.get(input.token)]
      : (this.actionsByInstance.get(input.instanceId ?? "") ?? []);
    const action = candidates.find(
      (candidate) =>
        candidate !== undefined &&
        !candidate.completed &&
        candidate.groupName === input.groupName &&
        candidate.hookName === input.hookName,
    );
    if (action && input.token && input.instanceId && action.instanceId !== input.instanceId) {
      throw new AwsServiceError(
        "ValidationError",
        `No active Lifecycle Action found with token ${input.token}`,
      );
    }
    if (!action) {
      throw new AwsServiceError(
        "ValidationError",
        input.token
          ? `No active Lifecycle Action found with token ${input.token}`
          : `No active Lifecycle Action found with instance ID ${input.instanceId}`,
      );
    }
    return action;
  }

  completeLifecycleAction(
    input: { groupName: string; hookName: string; token?: string; instanceId?: string; result: string },
    by: CompletedBy,
  ): LifecycleAction {
    if (input.result !== "CONTINUE" && input.result !== "ABANDON") {
      throw new AwsServiceError(
        "ValidationError",
        `1 validation error detected: Value '${input.result}' at 'lifecycleActionResult' failed to satisfy constraint: Member must satisfy enum value set: [CONTINUE, ABANDON]`,
      );
    }
    if (!input.token && !input.instanceId) {
      throw new AwsServiceError(
        "ValidationError",
        "Either LifecycleActionToken or InstanceId must be specified",
      );
    }
    const action = this.findActiveAction(input);
    this.finishAction(action, input.result, by);
    return action;
  }

  recordHeartbeat(input: { groupName: string; hookName: string; token?: string; instanceId?: string }): void {
    if (!input.token && !input.instanceId) {
      throw new AwsServiceError(
        "ValidationError",
        "Either LifecycleActionToken or InstanceId must be specified",
      );
    }
    const action = this.findActiveAction(input);
    const hook = this.group(input.groupName).hooks.get(input.hookName)!;
    // The heartbeat restarts the window, capped by the global timeout.
    action.heartbeatDeadline = this.world.now() + hook.heartbeatTimeout * 1000;
    action.heartbeats++;
    this.armTimeout(action);
  }

  private finishAction(action: LifecycleAction, result: "CONTINUE" | "ABANDON", by: CompletedBy): void {
    if (action.completed) return;
    action.timer?.cancel();
    const now = this.world.now();
    action.completed = { result, at: now, by };
    const instance = this.world.instance(action.instanceId);
    const group = this.groups.get(action.groupName);
    this.world.trace.record({
      at: now,
      kind: "hook.completed",
      instanceId: action.instanceId,
      groupName: action.groupName,
      message: `${action.instanceId} ${action.hookName}: ${result} (${by})`,
      data: { hookName: action.hookName, result, by, seconds: (now - action.startedAt) / 1000 },
    });
    if (!group || instance.terminated || !WAITING_STATES.has(instance.lifecycleState)) return;
    if (result === "ABANDON") {
      const reason =
        by === "timeout"
          ? `Instance failed to complete user's Lifecycle Action: Lifecycle Action with token ${action.token} was abandoned: Heartbeat Timeout`
          : `Instance failed to complete user's Lifecycle Action: Lifecycle Action with token ${action.token} was abandoned: Lifecycle Action Completed with ABANDON Result`;
      this.abandon(
        group,
        instance,
        reason,
        by === "timeout" ? "heartbeat timeout" : `ABANDON by ${action.hookName}`,
      );
      return;
    }
    const pending = this.actionsOf(instance.id).some((other) => !other.completed);
    if (!pending) this.proceed(group, instance);
  }

  private proceed(group: AutoScalingGroup, instance: Instance): void {
    this.setState(instance, "Pending:Proceed");
    const delay = this.world.rng
      .fork(`proceed:${instance.id}`)
      .draw(this.options.proceedSeconds ?? { min: 1, max: 3 });
    this.world.scheduler.after(delay * 1000, () => {
      if (instance.terminated || instance.lifecycleState !== "Pending:Proceed") return;
      this.setState(instance, "InService");
      const now = this.world.now();
      instance.milestones.inService = now;
      group.consecutiveFailures = 0;
      const activity = this.activityByInstance.get(instance.id);
      if (activity) {
        activity.StatusCode = "Successful";
        activity.Progress = 100;
        activity.EndTime = now;
      }
      this.world.trace.record({
        at: now,
        kind: "instance.in-service",
        instanceId: instance.id,
        groupName: group.name,
        message: `${instance.id} InService`,
      });
    });
  }

  private abandon(group: AutoScalingGroup, instance: Instance, statusMessage: string, reason: string): void {
    const now = this.world.now();
    instance.milestones.abandoned = now;
    instance.abandonReason = reason;
    const activity = this.activityByInstance.get(instance.id);
    if (activity) {
      activity.StatusCode = "Failed";
      activity.StatusMessage = statusMessage;
      activity.Progress = 100;
      activity.EndTime = now;
    }
    group.consecutiveFailures++;
    const backoff = Math.min(
      300,
      (this.options.relaunchBackoffSeconds ?? 10) * 2 ** (group.consecutiveFailures - 1),
    );
    group.nextLaunchAt = Math.max(group.nextLaunchAt, now + backoff * 1000);
    this.world.trace.record({
      at: now,
      kind: "instance.abandoned",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} abandoned (${reason}), to be replaced`,
      data: { reason },
    });
    this.terminate(instance, "abandon");
  }

  /** Terminating -> Terminated; the group then launches what it misses. */
  terminate(instance: Instance, why: "scale-in" | "abandon" | "fault"): void {
    if (instance.terminated || instance.lifecycleState.startsWith("Terminating")) return;
    const group = instance.groupName ? this.groups.get(instance.groupName) : undefined;
    for (const action of this.actionsOf(instance.id)) {
      if (!action.completed) {
        action.timer?.cancel();
        action.completed = { result: "ABANDON", at: this.world.now(), by: "terminated" };
      }
    }
    if (group && why !== "abandon") {
      const activity = this.activityByInstance.get(instance.id);
      if (activity && activity.StatusCode !== "Successful" && activity.StatusCode !== "Failed") {
        activity.StatusCode = "Cancelled";
        activity.StatusMessage = "Instance was terminated before it entered service.";
        activity.EndTime = this.world.now();
      }
      this.addActivity(group, {
        Description: `Terminating EC2 instance: ${instance.id}`,
        Cause: `At ${isoSeconds(this.world.now())} an instance was taken out of service in response to ${why === "fault" ? "an EC2 instance status check failure" : "a difference between desired and actual capacity"}.`,
        StatusCode: "InProgress",
        Progress: 50,
        instanceId: instance.id,
        Details: JSON.stringify({ "Availability Zone": instance.availabilityZone }),
      });
    }
    this.setState(instance, "Terminating");
    this.world.ssm.onInstanceTerminating(instance);
    const delay = this.world.rng
      .fork(`terminate:${instance.id}`)
      .draw(this.options.terminateSeconds ?? { min: 5, max: 15 });
    this.world.scheduler.after(delay * 1000, () => {
      instance.terminated = true;
      instance.milestones.terminated = this.world.now();
      this.setState(instance, "Terminated");
      this.world.trace.record({
        at: this.world.now(),
        kind: "instance.terminated",
        instanceId: instance.id,
        groupName: instance.groupName ?? undefined,
        message: `${instance.id} terminated`,
      });
      if (group) {
        group.instances.delete(instance.id);
        for (const activity of this.activitiesOfInstance.get(instance.id) ?? []) {
          if (activity.StatusCode === "InProgress") {
            activity.StatusCode = "Successful";
            activity.Progress = 100;
            activity.EndTime = this.world.now();
          }
        }
        this.reconcile(group);
      }
    });
  }

  /**
   * Launches instances with the given ids (and lifecycle action tokens per hook), raising the desired
   * capacity to match: a fleet shaped after a real event, for replays.
   */
  launchInstances(
    groupName: string,
    instances: { id: string; tokens?: Record<string, string> }[],
  ): Instance[] {
    const group = this.group(groupName);
    const before = this.liveInstances(group).length;
    const after = before + instances.length;
    group.maxSize = Math.max(group.maxSize, after);
    group.desiredCapacity = after;
    return instances.map((given) => {
      for (const [hook, token] of Object.entries(given.tokens ?? {}))
        this.givenTokens.set(`${given.id}:${hook}`, token);
      return this.launch(group, before, after, given);
    });
  }

  /** Adds a running instance directly (a long-lived instance from before the scenario starts). */
  adoptInstance(groupName: string, instance: Instance): void {
    const group = this.group(groupName);
    group.instances.add(instance.id);
    group.desiredCapacity = Math.max(group.desiredCapacity, this.liveInstances(group).length);
  }

  private setState(instance: Instance, state: string): void {
    instance.lifecycleState = state;
    instance.changed.notify();
  }

  private addActivity(
    group: AutoScalingGroup,
    fields: Omit<
      ScalingActivity,
      "ActivityId" | "AutoScalingGroupName" | "AutoScalingGroupARN" | "StartTime"
    >,
  ): ScalingActivity {
    const activity: ScalingActivity = {
      ActivityId: this.world.rng.fork(`activity:${this.activities.length}:${group.name}`).uuid(),
      AutoScalingGroupName: group.name,
      AutoScalingGroupARN: group.arn,
      StartTime: this.world.now(),
      ...fields,
    };
    this.activities.push(activity);
    if (activity.instanceId) {
      const ofInstance = this.activitiesOfInstance.get(activity.instanceId) ?? [];
      ofInstance.push(activity);
      this.activitiesOfInstance.set(activity.instanceId, ofInstance);
    }
    return activity;
  }
}
