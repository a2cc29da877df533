import { LAUNCH_TRANSITION, TERMINATE_TRANSITION } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { LifecycleAction, LifecycleResult } from "../lifecycle-action.js";
import { AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import { type AutoScalingGroup, findGroup, type LifecycleHook } from "./records.js";

/**
 * Lifecycle hooks and their actions: the hooks a group has, one action (token) per hook and instance,
 * the heartbeat window with its global cap, and the lookup the API calls make by token or instance id.
 * What a completed or expired action does to the instance is the lifecycle's (lifecycle.ts).
 */
export class LifecycleHooks {
  readonly actions: LifecycleAction[] = [];
  private readonly byInstance = new Map<string, LifecycleAction[]>();
  private readonly byToken = new Map<string, LifecycleAction>();
  /** Tokens a replay gives its instances, by `instanceId:hookName`. */
  private readonly givenTokens = new Map<string, string>();

  constructor(
    private readonly world: WorldServices,
    private readonly groups: ReadonlyMap<string, AutoScalingGroup>,
    /** Applies a hook's default result when the heartbeat window runs out. */
    private readonly expire: (action: LifecycleAction, result: LifecycleResult) => void,
  ) {}

  /** The lifecycle actions of one instance (one per launch hook). */
  actionsOf(instanceId: string): LifecycleAction[] {
    return this.byInstance.get(instanceId) ?? [];
  }

  put(input: {
    groupName: string;
    hookName: string;
    transition?: string;
    heartbeatTimeout?: number;
    defaultResult?: string;
    notificationMetadata?: string;
    notificationTargetArn?: string;
    roleArn?: string;
  }): LifecycleHook {
    const group = findGroup(this.groups, input.groupName);
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

  /**
   * DeleteLifecycleHook: the hook is gone from the group, and its open actions are handed back to be
   * completed ("If there are any outstanding lifecycle actions, they are completed first (ABANDON for
   * launching instances, CONTINUE for terminating instances)",
   * https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteLifecycleHook.html).
   */
  delete(groupName: string, hookName: string): { hook: LifecycleHook; open: LifecycleAction[] } {
    const group = findGroup(this.groups, groupName);
    const hook = group.hooks.get(hookName);
    if (!hook) {
      throw new AwsServiceError(
        "ValidationError",
        `No Lifecycle Hook found with name ${hookName} for group ${groupName}`,
      );
    }
    group.hooks.delete(hookName);
    const open = this.actions.filter(
      (action) => !action.completed && action.groupName === group.name && action.hookName === hookName,
    );
    return { hook, open };
  }

  /** The tokens a replay's instance gets, per hook name, instead of drawn ones. */
  giveTokens(instanceId: string, tokens: Record<string, string>): void {
    for (const [hook, token] of Object.entries(tokens)) this.givenTokens.set(`${instanceId}:${hook}`, token);
  }

  /**
   * Starts one action per hook on the instance, each with its own timeout. An instance leaving a warm
   * pool meets the hooks a second time, with new tokens.
   */
  start(
    group: AutoScalingGroup,
    instance: Instance,
    hooks: LifecycleHook[],
    now: number,
    leg: Pick<LifecycleAction, "origin" | "destination">,
  ): LifecycleAction[] {
    const started: LifecycleAction[] = [];
    const earlier = this.actionsOf(instance.id).length;
    for (const hook of hooks) {
      const given = earlier === 0 ? this.givenTokens.get(`${instance.id}:${hook.name}`) : undefined;
      const stream = `token:${instance.id}:${hook.name}${earlier === 0 ? "" : `:${earlier}`}`;
      const action: LifecycleAction = {
        token: given ?? this.world.rng.fork(stream).uuid(),
        hookName: hook.name,
        groupName: group.name,
        instanceId: instance.id,
        ...leg,
        startedAt: now,
        heartbeatDeadline: now + hook.heartbeatTimeout * 1000,
        globalDeadline: now + hook.globalTimeout * 1000,
        heartbeats: 0,
      };
      this.actions.push(action);
      this.byToken.set(action.token, action);
      const ofInstance = this.byInstance.get(instance.id) ?? [];
      ofInstance.push(action);
      this.byInstance.set(instance.id, ofInstance);
      this.armTimeout(action);
      started.push(action);
    }
    return started;
  }

  /** The action an API call names by token or instance id, or the ValidationError AWS returns. */
  findActive(input: {
    groupName: string;
    hookName: string;
    token?: string;
    instanceId?: string;
  }): LifecycleAction {
    const group = findGroup(this.groups, input.groupName);
    if (!group.hooks.has(input.hookName)) {
      throw new AwsServiceError(
        "ValidationError",
        `No Lifecycle Hook found with name ${input.hookName} for group ${input.groupName}`,
      );
    }
    const candidates = input.token
      ? [this.byToken.get(input.token)]
      : (this.byInstance.get(input.instanceId ?? "") ?? []);
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

  recordHeartbeat(input: { groupName: string; hookName: string; token?: string; instanceId?: string }): void {
    if (!input.token && !input.instanceId) {
      throw new AwsServiceError(
        "ValidationError",
        "Either LifecycleActionToken or InstanceId must be specified",
      );
    }
    const action = this.findActive(input);
    const hook = findGroup(this.groups, input.groupName).hooks.get(input.hookName)!;
    // The heartbeat restarts the window, capped by the global timeout.
    action.heartbeatDeadline = this.world.now() + hook.heartbeatTimeout * 1000;
    action.heartbeats++;
    this.armTimeout(action);
  }

  /** The instance is terminating: its unfinished actions end, abandoned, without further effect. */
  endWithInstance(instance: Instance): void {
    for (const action of this.actionsOf(instance.id)) {
      if (!action.completed) {
        action.timer?.cancel();
        action.completed = { result: "ABANDON", at: this.world.now(), by: "terminated" };
      }
    }
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
      this.expire(action, hook?.defaultResult ?? "ABANDON");
    });
  }
}
