import { LAUNCH_TRANSITION } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { CompletedBy, LifecycleAction } from "../lifecycle-action.js";
import type { WorldServices } from "../services.js";
import { ScalingActivities } from "./activities.js";
import { Groups } from "./groups.js";
import { LifecycleHooks } from "./hooks.js";
import { Launches } from "./launches.js";
import { LaunchLifecycle } from "./lifecycle.js";
import {
  type AutoScalingGroup,
  type AutoScalingOptions,
  findGroup,
  type GroupSpec,
  type LifecycleHook,
  type ScalingActivity,
  type WarmPoolSpec,
} from "./records.js";
import { Termination, type TerminationCause } from "./termination.js";
import { WarmPools } from "./warm-pool.js";

/**
 * EC2 Auto Scaling: groups and their capacity (groups.ts), launches (launches.ts), lifecycle hooks and
 * actions (hooks.ts), the launch lifecycle (lifecycle.ts), warm pools (warm-pool.ts), termination
 * (termination.ts) and scaling activities (activities.ts). It knows no other service: it tells the world when it launches and
 * terminates an instance and when a launch hook starts holding one.
 */
export class AutoScalingModel {
  readonly groups = new Map<string, AutoScalingGroup>();
  readonly actions: LifecycleAction[];
  readonly activities: ScalingActivity[];
  private readonly hooks: LifecycleHooks;
  private readonly lifecycle: LaunchLifecycle;
  private readonly termination: Termination;
  private readonly fleet: Groups;
  private readonly warmPools: WarmPools;

  constructor(
    private readonly world: WorldServices,
    options: AutoScalingOptions = {},
  ) {
    const activities = new ScalingActivities(world);
    this.hooks = new LifecycleHooks(world, this.groups, (action, result) =>
      this.lifecycle.finish(action, result, "timeout"),
    );
    this.termination = new Termination(world, this.groups, this.hooks, activities, options, (group) =>
      this.fleet.reconcile(group),
    );
    this.lifecycle = new LaunchLifecycle(
      world,
      this.groups,
      this.hooks,
      activities,
      this.termination,
      options,
      (group, instance) => this.warmPools.warm(group, instance),
    );
    const launches = new Launches(world, activities, this.lifecycle, options);
    this.warmPools = new WarmPools(world, activities, launches, this.lifecycle, options);
    this.fleet = new Groups(world, this.groups, this.hooks, launches, this.termination, this.warmPools);
    this.actions = this.hooks.actions;
    this.activities = activities.all;
  }

  /** The lifecycle actions of one instance (one per launch hook). */
  actionsOf(instanceId: string): LifecycleAction[] {
    return this.hooks.actionsOf(instanceId);
  }

  createGroup(spec: GroupSpec): AutoScalingGroup {
    return this.fleet.create(spec);
  }

  group(name: string): AutoScalingGroup {
    return findGroup(this.groups, name);
  }

  putLifecycleHook(input: Parameters<LifecycleHooks["put"]>[0]): LifecycleHook {
    return this.hooks.put(input);
  }

  /**
   * DeleteLifecycleHook: a launch the hook still holds is completed with ABANDON (and replaced), a
   * termination with CONTINUE, before the hook goes.
   */
  deleteLifecycleHook(groupName: string, hookName: string): LifecycleAction[] {
    const { hook, open } = this.hooks.delete(groupName, hookName);
    this.world.trace.record({
      at: this.world.now(),
      kind: "hook.deleted",
      groupName,
      message: `${hookName} deleted from ${groupName}${open.length ? `; ${open.length} waiting launches completed with ABANDON` : ""}`,
      data: { hookName, open: open.map((action) => action.instanceId) },
    });
    for (const action of open) {
      this.lifecycle.finish(
        action,
        hook.transition === LAUNCH_TRANSITION ? "ABANDON" : "CONTINUE",
        "hook-deleted",
      );
    }
    return open;
  }

  setDesiredCapacity(groupName: string, desired: number, cause?: string): void {
    this.fleet.setDesiredCapacity(groupName, desired, cause);
  }

  /** PutWarmPool: creates or updates the group's warm pool and fills it. */
  putWarmPool(groupName: string, spec: WarmPoolSpec): void {
    this.fleet.putWarmPool(groupName, spec);
  }

  /** Instances that count toward capacity: everything not on its way out. */
  liveInstances(group: AutoScalingGroup): Instance[] {
    return this.fleet.liveInstances(group);
  }

  /** The instances of the group's warm pool not on their way out (DescribeWarmPool lists them). */
  warmPoolInstances(group: AutoScalingGroup): Instance[] {
    return this.warmPools.members(group);
  }

  /** How many instances the group's warm pool lacks (0 without a pool). */
  warmPoolMissing(group: AutoScalingGroup): number {
    return this.warmPools.missing(group);
  }

  /** The action an API call names by token or instance id, or the ValidationError AWS returns. */
  findActiveAction(input: Parameters<LifecycleHooks["findActive"]>[0]): LifecycleAction {
    return this.hooks.findActive(input);
  }

  completeLifecycleAction(
    input: Parameters<LaunchLifecycle["complete"]>[0],
    by: CompletedBy,
  ): LifecycleAction {
    return this.lifecycle.complete(input, by);
  }

  recordHeartbeat(input: Parameters<LifecycleHooks["recordHeartbeat"]>[0]): void {
    this.hooks.recordHeartbeat(input);
  }

  /** Terminating -> Terminated; the group then launches what it misses. */
  terminate(instance: Instance, why: TerminationCause): void {
    this.termination.terminate(instance, why);
  }

  /**
   * Launches instances with the given ids (and lifecycle action tokens per hook), raising the desired
   * capacity to match: a fleet shaped after a real event, for replays.
   */
  launchInstances(
    groupName: string,
    instances: { id: string; tokens?: Record<string, string> }[],
  ): Instance[] {
    return this.fleet.launchInstances(groupName, instances);
  }

  /** Adds a running instance directly (a long-lived instance from before the scenario starts). */
  adoptInstance(groupName: string, instance: Instance): void {
    this.fleet.adopt(groupName, instance);
  }
}
