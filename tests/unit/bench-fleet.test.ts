import { describe, expect, it } from "vitest";
import { World } from "../../sandbox/world/world.js";

const OUTDATED = { version: "1.6.0", running: true };

function launchFleet(seed: number, share: number | undefined, size = 400) {
  const world = new World({ seed });
  world.autoScaling.createGroup({
    name: "fleet",
    maxSize: size,
    image: { imageId: "ami-mixed", bakedAgent: OUTDATED, bakedAgentShare: share },
  });
  world.autoScaling.setDesiredCapacity("fleet", size);
  const instances = [...world.instances.values()];
  world.stop();
  return instances;
}

describe("a group launching from a mix of AMIs (bakedAgentShare)", () => {
  it("bakes the outdated agent into about the given share of launches, the same ones for a seed", () => {
    const first = launchFleet(7, 0.1);
    const again = launchFleet(7, 0.1);
    const baked = first.filter((instance) => instance.agent.version === "1.6.0");
    expect(baked.length).toBeGreaterThan(20);
    expect(baked.length).toBeLessThan(60);
    expect(first.filter((instance) => instance.agent.version === null)).toHaveLength(400 - baked.length);
    expect(again.map((instance) => instance.agent.version)).toEqual(
      first.map((instance) => instance.agent.version),
    );
  });

  it("leaves the rest of each instance's draws as they are without a share", () => {
    const mixed = launchFleet(7, 0.1, 50);
    const all = launchFleet(7, undefined, 50);
    const draws = (instances: typeof all) =>
      instances.map((instance) => [
        instance.id,
        instance.availabilityZone,
        (instance.ssm.registersAt ?? 0) - instance.launchedAt,
      ]);
    expect(draws(mixed)).toEqual(draws(all));
    expect(all.every((instance) => instance.agent.version === "1.6.0")).toBe(true);
  });
});
