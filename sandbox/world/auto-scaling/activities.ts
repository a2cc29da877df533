import { LAUNCH_ACTIVITY_PREFIX } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import type { AutoScalingGroup, ScalingActivity } from "./records.js";

// Scaling activities as DescribeScalingActivities shows them: one per launch and one per termination,
// with the descriptions, causes and status messages AWS writes.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-verify-scaling-activity.html

/** A timestamp as Auto Scaling writes it in causes: to the second. */
export function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export class ScalingActivities {
  readonly all: ScalingActivity[] = [];
  private readonly launchByInstance = new Map<string, ScalingActivity>();
  /** Every activity of an instance (launch, termination), for updates without scanning them all. */
  private readonly byInstance = new Map<string, ScalingActivity[]>();

  constructor(private readonly world: WorldServices) {}

  /**
   * A launch into the group, into its warm pool, or from the pool into the group: "Launching a new EC2
   * instance: i-...", "... into warm pool: i-...", "... from warm pool: i-..."
   * (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pools-eventbridge-events.html).
   */
  startLaunch(
    group: AutoScalingGroup,
    instance: Instance,
    capacityBefore: number,
    capacityAfter: number,
    warmPool?: "into" | "from",
  ): void {
    const cause =
      warmPool === "into"
        ? `At ${isoSeconds(this.world.now())} an instance was launched in response to a difference between the warm pool's desired and actual size, increasing the warm pool size from ${capacityBefore} to ${capacityAfter}.`
        : `${group.lastCapacityCause ?? ""}  At ${isoSeconds(this.world.now())} an instance was ${warmPool === "from" ? "taken from the warm pool" : "started"} in response to a difference between desired and actual capacity, increasing the capacity from ${capacityBefore} to ${capacityAfter}.`.trim();
    const activity = this.add(group, {
      Description: `${LAUNCH_ACTIVITY_PREFIX}${warmPool ? ` ${warmPool} warm pool` : ""}: ${instance.id}`,
      Cause: cause,
      StatusCode: "InProgress",
      Progress: 30,
      instanceId: instance.id,
      Details: JSON.stringify({
        "Subnet ID": "subnet-0sandbox",
        "Availability Zone": instance.availabilityZone,
      }),
    });
    this.launchByInstance.set(instance.id, activity);
  }

  waitOnHooks(instance: Instance): void {
    const activity = this.launchByInstance.get(instance.id);
    if (activity) activity.StatusCode = "MidLifecycleAction";
  }

  succeedLaunch(instance: Instance, at: number): void {
    const activity = this.launchByInstance.get(instance.id);
    if (!activity) return;
    activity.StatusCode = "Successful";
    activity.Progress = 100;
    activity.EndTime = at;
  }

  failLaunch(instance: Instance, statusMessage: string, at: number): void {
    const activity = this.launchByInstance.get(instance.id);
    if (!activity) return;
    activity.StatusCode = "Failed";
    activity.StatusMessage = statusMessage;
    activity.Progress = 100;
    activity.EndTime = at;
  }

  /** Cancels a launch that had not ended and adds the termination's activity. */
  startTermination(group: AutoScalingGroup, instance: Instance, why: "scale-in" | "fault"): void {
    const activity = this.launchByInstance.get(instance.id);
    if (activity && activity.StatusCode !== "Successful" && activity.StatusCode !== "Failed") {
      activity.StatusCode = "Cancelled";
      activity.StatusMessage = "Instance was terminated before it entered service.";
      activity.EndTime = this.world.now();
    }
    this.add(group, {
      Description: `Terminating EC2 instance: ${instance.id}`,
      Cause: `At ${isoSeconds(this.world.now())} an instance was taken out of service in response to ${why === "fault" ? "an EC2 instance status check failure" : "a difference between desired and actual capacity"}.`,
      StatusCode: "InProgress",
      Progress: 50,
      instanceId: instance.id,
      Details: JSON.stringify({ "Availability Zone": instance.availabilityZone }),
    });
  }

  /** The instance is gone: whatever of its activities still ran has succeeded. */
  finishTermination(instance: Instance): void {
    for (const activity of this.byInstance.get(instance.id) ?? []) {
      if (activity.StatusCode === "InProgress") {
        activity.StatusCode = "Successful";
        activity.Progress = 100;
        activity.EndTime = this.world.now();
      }
    }
  }

  private add(
    group: AutoScalingGroup,
    fields: Omit<
      ScalingActivity,
      "ActivityId" | "AutoScalingGroupName" | "AutoScalingGroupARN" | "StartTime"
    >,
  ): ScalingActivity {
    const activity: ScalingActivity = {
      ActivityId: this.world.rng.fork(`activity:${this.all.length}:${group.name}`).uuid(),
      AutoScalingGroupName: group.name,
      AutoScalingGroupARN: group.arn,
      StartTime: this.world.now(),
      ...fields,
    };
    this.all.push(activity);
    if (activity.instanceId) {
      const ofInstance = this.byInstance.get(activity.instanceId) ?? [];
      ofInstance.push(activity);
      this.byInstance.set(activity.instanceId, ofInstance);
    }
    return activity;
  }
}
