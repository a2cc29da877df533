import type { Instance } from "../instances.js";
import { AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import type { ScalingActivities } from "./activities.js";
import type { Launches } from "./launches.js";
import type { LaunchLifecycle } from "./lifecycle.js";
import {
  type AutoScalingGroup,
  type AutoScalingOptions,
  setLifecycleState,
  type WarmPool,
  type WarmPoolSpec,
  type WarmPoolState,
} from "./records.js";

/** Where a prepared instance waits in the pool, by the pool's state. */
const WARMED: Record<WarmPoolState, string> = {
  Stopped: "Warmed:Stopped",
  Running: "Warmed:Running",
  Hibernated: "Warmed:Hibernated",
};
const READY = new Set(Object.values(WARMED));

function isPoolState(value: string): value is WarmPoolState {
  return Object.hasOwn(WARMED, value);
}

/**
 * Warm pools (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html):
 * the pool keeps `max(MinSize, MaxGroupPreparedCapacity - desired capacity)` instances beside the
 * group, launched into it through the launch hooks (Warmed:Pending:Wait, the event's `Origin: EC2,
 * Destination: WarmPool`) and then stopped; a scale-out draws prepared instances from it, started
 * again and through the launch hooks once more (Pending:Wait, `Origin: WarmPool, Destination:
 * AutoScalingGroup`), before launching new ones. A stopped instance runs nothing: SSM cannot reach it.
 * Not modelled: instance reuse on scale-in (scale-in terminates) and the pool's deletion.
 */
export class WarmPools {
  constructor(
    private readonly world: WorldServices,
    private readonly activities: ScalingActivities,
    private readonly launches: Launches,
    private readonly lifecycle: LaunchLifecycle,
    private readonly options: AutoScalingOptions,
  ) {}

  /** PutWarmPool: creates or updates the group's pool, with the checks AWS makes. */
  put(group: AutoScalingGroup, spec: WarmPoolSpec): WarmPool {
    const minSize = spec.minSize ?? 0;
    if (minSize < 0) {
      throw new AwsServiceError(
        "ValidationError",
        `1 validation error detected: Value '${minSize}' at 'minSize' failed to satisfy constraint: Member must have value greater than or equal to 0`,
      );
    }
    const prepared = spec.maxGroupPreparedCapacity;
    if (prepared !== undefined && prepared < -1) {
      throw new AwsServiceError(
        "ValidationError",
        `1 validation error detected: Value '${prepared}' at 'maxGroupPreparedCapacity' failed to satisfy constraint: Member must have value greater than or equal to -1`,
      );
    }
    const poolState = spec.poolState ?? "Stopped";
    if (!isPoolState(poolState)) {
      throw new AwsServiceError(
        "ValidationError",
        `1 validation error detected: Value '${poolState}' at 'poolState' failed to satisfy constraint: Member must satisfy enum value set: [Hibernated, Running, Stopped]`,
      );
    }
    group.warmPool = {
      minSize,
      // -1 stands for "no maximum": the group's maximum size.
      ...(prepared === undefined || prepared === -1 ? {} : { maxGroupPreparedCapacity: prepared }),
      poolState,
      instances: group.warmPool?.instances ?? new Set(),
    };
    return group.warmPool;
  }

  /** The pool's instances not on their way out, in launch order. */
  members(group: AutoScalingGroup): Instance[] {
    return [...(group.warmPool?.instances ?? [])]
      .map((id) => this.world.instances.get(id))
      .filter((instance) => !instance.terminated && !instance.lifecycleState.startsWith("Terminating"));
  }

  /** How many instances the pool lacks. */
  missing(group: AutoScalingGroup): number {
    const pool = group.warmPool;
    if (!pool) return 0;
    const prepared = pool.maxGroupPreparedCapacity ?? group.maxSize;
    const target = Math.max(pool.minSize, prepared - group.desiredCapacity);
    return Math.max(0, target - this.members(group).length);
  }

  /** Prepared instances a scale-out can draw, oldest first (still warming ones cannot be). */
  ready(group: AutoScalingGroup): Instance[] {
    return this.members(group).filter((instance) => READY.has(instance.lifecycleState));
  }

  /** Launches into the pool what it lacks. */
  refill(group: AutoScalingGroup): void {
    const missing = this.missing(group);
    const before = this.members(group).length;
    for (let index = 0; index < missing; index++)
      this.launches.launch(group, before, before + missing, {}, "warm-pool");
  }

  /** The pool entry's hooks let the instance in: it stops (or keeps running, or hibernates) in the pool. */
  warm(group: AutoScalingGroup, instance: Instance): void {
    const pool = group.warmPool;
    const state = pool?.poolState ?? "Stopped";
    const now = this.world.now();
    instance.ec2State = state === "Running" ? "running" : "stopped";
    instance.milestones.warmed = now;
    group.consecutiveFailures = 0;
    setLifecycleState(instance, WARMED[state]);
    this.activities.succeedLaunch(instance, now);
    this.world.trace.record({
      at: now,
      kind: "instance.warmed",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} ${WARMED[state]} in the warm pool`,
    });
  }

  /**
   * A scale-out draws a prepared instance into the group: EC2 starts it, and after its boot it meets
   * the launch hooks again, with a launch activity "from warm pool" of its own.
   */
  leave(group: AutoScalingGroup, instance: Instance, capacityBefore: number, capacityAfter: number): void {
    group.warmPool?.instances.delete(instance.id);
    group.instances.add(instance.id);
    const now = this.world.now();
    instance.ec2State = "running";
    instance.milestones.leftWarmPool = now;
    setLifecycleState(instance, "Pending");
    this.activities.startLaunch(group, instance, capacityBefore, capacityAfter, "from");
    this.world.trace.record({
      at: now,
      kind: "instance.leaves-warm-pool",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} leaves the warm pool for ${group.name}`,
    });
    const boot = this.world.rng
      .fork(`warm-pool-start:${instance.id}`)
      .draw(this.options.bootSeconds ?? { min: 1, max: 3 });
    this.world.scheduler.after(boot * 1000, () =>
      this.lifecycle.enterLaunchHooks(group, instance, "WarmPool"),
    );
  }
}
