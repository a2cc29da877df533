import type { Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import type { ScalingActivities } from "./activities.js";
import type { LifecycleHooks } from "./hooks.js";
import { type AutoScalingGroup, type AutoScalingOptions, setLifecycleState } from "./records.js";

export type TerminationCause = "scale-in" | "abandon" | "fault";

/**
 * Terminating -> Terminated. The instance's unfinished lifecycle actions end with it, the world hears
 * `instance.terminating` (the agent stops, SSM fails what it ran there), and once it is gone the group
 * launches what it misses.
 */
export class Termination {
  constructor(
    private readonly world: WorldServices,
    private readonly groups: ReadonlyMap<string, AutoScalingGroup>,
    private readonly hooks: LifecycleHooks,
    private readonly activities: ScalingActivities,
    private readonly options: AutoScalingOptions,
    /** Brings the group back to its desired capacity. */
    private readonly reconcile: (group: AutoScalingGroup) => void,
  ) {}

  terminate(instance: Instance, why: TerminationCause): void {
    if (instance.terminated || instance.lifecycleState.startsWith("Terminating")) return;
    const group = instance.groupName ? this.groups.get(instance.groupName) : undefined;
    this.hooks.endWithInstance(instance);
    // An abandoned launch already ended its activity as Failed; it gets no termination activity.
    if (group && why !== "abandon") this.activities.startTermination(group, instance, why);
    setLifecycleState(instance, "Terminating");
    instance.milestones.terminating = this.world.now();
    this.world.events.emit("instance.terminating", { instance });
    const delay = this.world.rng
      .fork(`terminate:${instance.id}`)
      .draw(this.options.terminateSeconds ?? { min: 5, max: 15 });
    this.world.scheduler.after(delay * 1000, () => {
      instance.terminated = true;
      instance.milestones.terminated = this.world.now();
      setLifecycleState(instance, "Terminated");
      this.world.trace.record({
        at: this.world.now(),
        kind: "instance.terminated",
        instanceId: instance.id,
        groupName: instance.groupName ?? undefined,
        message: `${instance.id} terminated`,
      });
      if (group) {
        group.instances.delete(instance.id);
        group.warmPool?.instances.delete(instance.id);
        this.activities.finishTermination(instance);
        this.reconcile(group);
      }
    });
  }
}
