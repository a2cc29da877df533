import { createInstance, type Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import type { ScalingActivities } from "./activities.js";
import type { LaunchLifecycle } from "./lifecycle.js";
import type { AutoScalingGroup, AutoScalingOptions } from "./records.js";

/**
 * Launching a new EC2 instance into a group: its platform, agent, zone and id drawn from the launch's
 * own random stream, its launch activity, and after the boot delay its launch hooks.
 */
export class Launches {
  constructor(
    private readonly world: WorldServices,
    private readonly activities: ScalingActivities,
    private readonly lifecycle: LaunchLifecycle,
    private readonly options: AutoScalingOptions,
  ) {}

  /**
   * `given.id` names the instance after a real one (a replay); `into` "warm-pool" launches it into the
   * group's warm pool (capacities are then the pool's).
   */
  launch(
    group: AutoScalingGroup,
    capacityBefore: number,
    capacityAfter: number,
    given: { id?: string } = {},
    into: "group" | "warm-pool" = "group",
  ): Instance {
    const ordinal = this.world.instances.nextOrdinal(`launch:${group.name}`);
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
      lifecycleState: into === "warm-pool" ? "Warmed:Pending" : "Pending",
      agent: baked
        ? { package: baked.package ?? "AWSCodeDeployAgent", version: baked.version, running: baked.running }
        : { package: null, version: null, running: false },
    });
    this.world.instances.add(instance);
    if (into === "warm-pool" && group.warmPool) group.warmPool.instances.add(instance.id);
    else group.instances.add(instance.id);
    this.activities.startLaunch(
      group,
      instance,
      capacityBefore,
      capacityAfter,
      into === "warm-pool" ? "into" : undefined,
    );
    this.world.trace.record({
      at: now,
      kind: "instance.launched",
      instanceId: instance.id,
      groupName: group.name,
      message: `${instance.id} launched in ${group.name}${into === "warm-pool" ? "'s warm pool" : ""} (${platform}, agent ${baked ? `${baked.version}${baked.running ? "" : " stopped"}` : "none"})`,
      data: { imageId: group.image.imageId, into },
    });
    this.world.events.emit("instance.launched", { instance, image: group.image, rng });
    this.world.scheduler.after(rng.draw(this.options.bootSeconds ?? { min: 1, max: 3 }) * 1000, () =>
      this.lifecycle.enterLaunchHooks(group, instance),
    );
    return instance;
  }
}
