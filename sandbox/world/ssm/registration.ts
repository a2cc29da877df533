import type { ImageProfile, Instance } from "../instances.js";
import type { Random } from "../random.js";
import type { WorldServices } from "../services.js";
import type { SsmOptions } from "./records.js";

/** Managed and reachable: registered, and EC2 running (not stopped in a warm pool, shutting down or terminated). */
export function isManaged(instance: Instance | undefined): instance is Instance {
  return (
    instance !== undefined &&
    instance.ssm.registeredAt !== null &&
    !instance.terminated &&
    instance.ec2State === "running" &&
    !instance.lifecycleState.startsWith("Terminating")
  );
}

/**
 * The SSM Agent of each launched instance registers a while after launch (or never: no instance
 * profile, no route to SSM), which makes the instance managed; the world hears `instance.registered`.
 */
export class Registration {
  constructor(
    private readonly world: WorldServices,
    private readonly options: SsmOptions,
  ) {
    world.events.on("instance.launched", ({ instance, image, rng }) => this.schedule(instance, rng, image));
  }

  /** Instances DescribeInstanceInformation answers for ("does not return information for nodes that are Stopped or Terminated"). */
  managedInstances(): Instance[] {
    return [...this.world.instances.all.values()]
      .filter(
        (instance) =>
          instance.ssm.registeredAt !== null && !instance.terminated && instance.ec2State === "running",
      )
      .sort((a, b) => (a.ssm.registeredAt ?? 0) - (b.ssm.registeredAt ?? 0));
  }

  register(instance: Instance): void {
    if (instance.terminated || instance.ssm.registeredAt !== null) return;
    const now = this.world.now();
    instance.ssm.registeredAt = now;
    instance.milestones.ssmOnline = now;
    instance.changed.notify();
    this.world.trace.record({
      at: now,
      kind: "instance.ssm-online",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} SSM Online`,
    });
    this.world.events.emit("instance.registered", { instance });
  }

  private schedule(instance: Instance, rng: Random, image: ImageProfile): void {
    if (rng.chance(image.neverRegistersProbability ?? 0)) {
      this.world.trace.record({
        at: this.world.now(),
        kind: "instance.never-registers",
        instanceId: instance.id,
        groupName: instance.groupName ?? undefined,
        message: `${instance.id} will never register with SSM`,
      });
      return;
    }
    const fallback =
      instance.platform === "Windows"
        ? (this.options.windowsRegistrationDelaySeconds ?? { median: 150, p95: 300, min: 60 })
        : (this.options.registrationDelaySeconds ?? { median: 40, p95: 90, min: 15 });
    const delayMs = rng.draw(image.registrationDelaySeconds ?? fallback) * 1000;
    instance.ssm.registersAt = instance.launchedAt + delayMs;
    this.world.scheduler.after(delayMs, () => this.register(instance));
  }
}
