import { LAUNCH_TRANSITION, WAITING_STATES } from "../../../functions/core/contract.js";
import { launchLifecycleEvent } from "../../events/shapes.js";
import type { Instance } from "../instances.js";
import type { CompletedBy, LaunchPlace, LifecycleAction, LifecycleResult } from "../lifecycle-action.js";
import { AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import type { ScalingActivities } from "./activities.js";
import type { LifecycleHooks } from "./hooks.js";
import { type AutoScalingGroup, type AutoScalingOptions, setLifecycleState } from "./records.js";
import type { Termination } from "./termination.js";

/**
 * The launch lifecycle: Pending -> Pending:Wait while launch hooks hold the instance -> Pending:Proceed
 * -> InService, or abandoned and terminated. Semantics follow
 * https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html: every launch hook gets
 * its own action (token) at once; the instance waits until every action is completed with CONTINUE;
 * one ABANDON (or a heartbeat timeout whose default result is ABANDON) terminates it, and the group
 * launches a replacement, more slowly after each consecutive failure. An instance launched into a
 * warm pool goes the same way in Warmed:* states (Warmed:Pending:Wait, Warmed:Pending:Proceed) and
 * ends warmed in the pool; when it leaves the pool it meets the launch hooks again.
 */
export class LaunchLifecycle {
  constructor(
    private readonly world: WorldServices,
    private readonly groups: ReadonlyMap<string, AutoScalingGroup>,
    private readonly hooks: LifecycleHooks,
    private readonly activities: ScalingActivities,
    private readonly termination: Termination,
    private readonly options: AutoScalingOptions,
    /** The instance is prepared in the warm pool: the pool stops it (or keeps it running). */
    private readonly warmed: (group: AutoScalingGroup, instance: Instance) => void,
  ) {}

  /**
   * The booted instance meets the group's launch hooks, or goes on when it has none. `origin` is
   * where it comes from: EC2 (a new instance, into the group or its warm pool) or the warm pool.
   */
  enterLaunchHooks(group: AutoScalingGroup, instance: Instance, origin: LaunchPlace = "EC2"): void {
    const intoPool = instance.lifecycleState === "Warmed:Pending";
    if (instance.terminated || (instance.lifecycleState !== "Pending" && !intoPool)) return;
    const hooks = [...group.hooks.values()].filter((hook) => hook.transition === LAUNCH_TRANSITION);
    if (hooks.length === 0) {
      this.proceed(group, instance);
      return;
    }
    const now = this.world.now();
    const waiting = intoPool ? "Warmed:Pending:Wait" : "Pending:Wait";
    setLifecycleState(instance, waiting);
    instance.milestones.pendingWait = now;
    this.activities.waitOnHooks(instance);
    const destination = intoPool ? "WarmPool" : "AutoScalingGroup";
    const started = this.hooks.start(group, instance, hooks, now, { origin, destination });
    this.world.trace.record({
      at: now,
      kind: "instance.pending-wait",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} ${waiting} on ${hooks.map((hook) => hook.name).join(", ")}${origin === "EC2" && !intoPool ? "" : ` (${origin} to ${destination})`}`,
      data: { origin, destination },
    });
    // Auto Scaling "sends notifications for all of the hooks at once".
    for (const action of started) {
      this.world.events.emit("lifecycle-action.started", { action, instance });
      this.publishLaunchEvent(group, action, instance);
    }
  }

  complete(
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
    const action = this.hooks.findActive(input);
    this.finish(action, input.result, by);
    return action;
  }

  finish(action: LifecycleAction, result: LifecycleResult, by: CompletedBy): void {
    if (action.completed) return;
    action.timer?.cancel();
    const now = this.world.now();
    action.completed = { result, at: now, by };
    const instance = this.world.instances.get(action.instanceId);
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
        by === "timeout"
          ? "heartbeat timeout"
          : by === "hook-deleted"
            ? `ABANDON by ${action.hookName} (hook deleted)`
            : `ABANDON by ${action.hookName}`,
      );
      return;
    }
    const pending = this.hooks.actionsOf(instance.id).some((other) => !other.completed);
    if (!pending) this.proceed(group, instance);
  }

  private proceed(group: AutoScalingGroup, instance: Instance): void {
    const intoPool = instance.lifecycleState.startsWith("Warmed:");
    setLifecycleState(instance, intoPool ? "Warmed:Pending:Proceed" : "Pending:Proceed");
    const leg = instance.milestones.leftWarmPool === undefined ? "" : ":from-warm-pool";
    const delay = this.world.rng
      .fork(`proceed:${instance.id}${intoPool ? ":into-warm-pool" : leg}`)
      .draw(this.options.proceedSeconds ?? { min: 1, max: 3 });
    if (intoPool) {
      this.world.scheduler.after(delay * 1000, () => {
        if (!instance.terminated && instance.lifecycleState === "Warmed:Pending:Proceed")
          this.warmed(group, instance);
      });
      return;
    }
    this.world.scheduler.after(delay * 1000, () => {
      if (instance.terminated || instance.lifecycleState !== "Pending:Proceed") return;
      setLifecycleState(instance, "InService");
      const now = this.world.now();
      instance.milestones.inService = now;
      group.consecutiveFailures = 0;
      this.activities.succeedLaunch(instance, now);
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
    this.activities.failLaunch(instance, statusMessage, now);
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
    this.termination.terminate(instance, "abandon");
  }

  private publishLaunchEvent(group: AutoScalingGroup, action: LifecycleAction, instance: Instance): void {
    this.world.publisher.publish(
      launchLifecycleEvent({
        id: this.world.rng.fork(`event:${action.token}`).uuid(),
        at: this.world.now(),
        region: this.world.region,
        groupArn: group.arn,
        token: action.token,
        groupName: group.name,
        hookName: action.hookName,
        instanceId: instance.id,
        notificationMetadata: group.hooks.get(action.hookName)?.notificationMetadata,
        origin: action.origin,
        destination: action.destination,
      }),
    );
  }
}
