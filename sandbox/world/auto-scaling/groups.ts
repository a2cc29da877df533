import type { Instance } from "../instances.js";
import { ACCOUNT_ID, AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import { isoSeconds } from "./activities.js";
import type { LifecycleHooks } from "./hooks.js";
import type { Launches } from "./launches.js";
import { type AutoScalingGroup, findGroup, type GroupSpec } from "./records.js";
import type { Termination } from "./termination.js";
import type { WarmPools } from "./warm-pool.js";

/**
 * Groups and their capacity: the group launches what it misses (drawing on its warm pool first) and
 * scales in what it has too many of, keeps its warm pool filled, and backs off relaunching after
 * abandoned launches.
 */
export class Groups {
  constructor(
    private readonly world: WorldServices,
    private readonly groups: Map<string, AutoScalingGroup>,
    private readonly hooks: LifecycleHooks,
    private readonly launches: Launches,
    private readonly termination: Termination,
    private readonly warmPools: WarmPools,
  ) {}

  create(spec: GroupSpec): AutoScalingGroup {
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
    if (spec.warmPool) this.warmPools.put(group, spec.warmPool);
    if (spec.desiredCapacity) this.setDesiredCapacity(spec.name, spec.desiredCapacity);
    else if (spec.warmPool) this.reconcile(group);
    return group;
  }

  setDesiredCapacity(groupName: string, desired: number, cause?: string): void {
    const group = findGroup(this.groups, groupName);
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
      .map((id) => this.world.instances.get(id))
      .filter((instance) => !instance.terminated && !instance.lifecycleState.startsWith("Terminating"));
  }

  reconcile(group: AutoScalingGroup): void {
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
      for (const instance of victims) this.termination.terminate(instance, "scale-in");
    }
    const missing = group.desiredCapacity - live.length;
    if (missing <= 0 && this.warmPools.missing(group) === 0) return;
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
    const fromPool = this.warmPools.ready(group).slice(0, Math.max(0, missing));
    for (const instance of fromPool) this.warmPools.leave(group, instance, before, group.desiredCapacity);
    for (let index = fromPool.length; index < missing; index++)
      this.launches.launch(group, before, group.desiredCapacity);
    this.warmPools.refill(group);
  }

  /** PutWarmPool: the group's pool, filled at once. */
  putWarmPool(groupName: string, spec: Parameters<WarmPools["put"]>[1]): void {
    const group = findGroup(this.groups, groupName);
    this.warmPools.put(group, spec);
    this.reconcile(group);
  }

  /**
   * Launches instances with the given ids (and lifecycle action tokens per hook), raising the desired
   * capacity to match: a fleet shaped after a real event, for replays.
   */
  launchInstances(
    groupName: string,
    instances: { id: string; tokens?: Record<string, string> }[],
  ): Instance[] {
    const group = findGroup(this.groups, groupName);
    const before = this.liveInstances(group).length;
    const after = before + instances.length;
    group.maxSize = Math.max(group.maxSize, after);
    group.desiredCapacity = after;
    return instances.map((given) => {
      this.hooks.giveTokens(given.id, given.tokens ?? {});
      return this.launches.launch(group, before, after, given);
    });
  }

  /** Adds a running instance directly (a long-lived instance from before the scenario starts). */
  adopt(groupName: string, instance: Instance): void {
    const group = findGroup(this.groups, groupName);
    group.instances.add(instance.id);
    group.desiredCapacity = Math.max(group.desiredCapacity, this.liveInstances(group).length);
  }
}
