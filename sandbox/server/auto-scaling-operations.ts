import type { AutoScalingGroup, LifecycleHook } from "../world/auto-scaling/records.js";
import type { Instance } from "../world/instances.js";
import { AwsServiceError } from "../world/service-error.js";
import type { World } from "../world/world.js";
import { asNumber, asString, asStrings, type Operation } from "./operation.js";
import { paginate } from "./paginate.js";

function required(input: Record<string, unknown>, member: string): string {
  const value = asString(input[member]);
  if (!value)
    throw new AwsServiceError(
      "ValidationError",
      `1 validation error detected: Value null at '${member.charAt(0).toLowerCase()}${member.slice(1)}' failed to satisfy constraint: Member must not be null`,
    );
  return value;
}

function maxRecords(input: Record<string, unknown>, max: number, fallback: number): number {
  const value = asNumber(input.MaxRecords);
  if (value === undefined) return fallback;
  if (value < 1 || value > max) {
    throw new AwsServiceError(
      "ValidationError",
      `1 validation error detected: Value '${value}' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to ${max}`,
    );
  }
  return value;
}

function launchTemplate(group: AutoScalingGroup) {
  return {
    LaunchTemplateId: `lt-${group.image.imageId.replace(/^ami-/, "").slice(0, 17)}`,
    LaunchTemplateName: `${group.name}-template`,
    Version: "$Latest",
  };
}

function hookOutput(hook: LifecycleHook) {
  return {
    LifecycleHookName: hook.name,
    AutoScalingGroupName: hook.groupName,
    LifecycleTransition: hook.transition,
    NotificationTargetARN: hook.notificationTargetArn,
    RoleARN: hook.roleArn,
    NotificationMetadata: hook.notificationMetadata,
    HeartbeatTimeout: hook.heartbeatTimeout,
    GlobalTimeout: hook.globalTimeout,
    DefaultResult: hook.defaultResult,
  };
}

function groupInstances(world: World, group: AutoScalingGroup): Instance[] {
  return [...group.instances].map((id) => world.instance(id)).filter((instance) => !instance.terminated);
}

/** The warm pool's instances, warming, warmed or on their way out (not yet terminated). */
function warmPoolInstances(world: World, group: AutoScalingGroup): Instance[] {
  return [...(group.warmPool?.instances ?? [])]
    .map((id) => world.instance(id))
    .filter((instance) => !instance.terminated);
}

function instanceOutput(group: AutoScalingGroup, instance: Instance) {
  return {
    InstanceId: instance.id,
    InstanceType: instance.instanceType,
    AvailabilityZone: instance.availabilityZone,
    LifecycleState: instance.lifecycleState,
    HealthStatus: "Healthy",
    LaunchTemplate: launchTemplate(group),
    // The AMI the instance runs (the launch template's at its launch, not the group's now).
    ImageId: instance.imageId,
    ProtectedFromScaleIn: false,
  };
}

function warmPoolConfiguration(group: AutoScalingGroup) {
  const pool = group.warmPool;
  if (!pool) return undefined;
  return {
    MaxGroupPreparedCapacity: pool.maxGroupPreparedCapacity ?? -1,
    MinSize: pool.minSize,
    PoolState: pool.poolState,
  };
}

export const autoScalingOperations: Record<string, Operation> = {
  DescribeAutoScalingInstances(input, { world }) {
    const ids = asStrings(input.InstanceIds) ?? [];
    if (ids.length > 50) {
      throw new AwsServiceError(
        "ValidationError",
        "The number of instance ids that may be passed in is limited to 50",
      );
    }
    const size = maxRecords(input, 50, 50);
    // Instances of a warm pool are listed too, in their Warmed:* states.
    const all = [...world.autoScaling.groups.values()].flatMap((group) =>
      [...groupInstances(world, group), ...warmPoolInstances(world, group)].map((instance) => ({
        group,
        instance,
      })),
    );
    // Unknown ids are ignored without an error.
    const rows = ids.length > 0 ? all.filter(({ instance }) => ids.includes(instance.id)) : all;
    const { page, nextToken } = paginate(rows, size, asString(input.NextToken), "InvalidNextToken");
    return {
      AutoScalingInstances: page.map(({ group, instance }) => ({
        InstanceId: instance.id,
        InstanceType: instance.instanceType,
        AutoScalingGroupName: group.name,
        AvailabilityZone: instance.availabilityZone,
        LifecycleState: instance.lifecycleState,
        // DescribeAutoScalingInstances spells health in capitals, DescribeAutoScalingGroups does not.
        HealthStatus: "HEALTHY",
        LaunchTemplate: launchTemplate(group),
        ImageId: instance.imageId,
        ProtectedFromScaleIn: false,
      })),
      NextToken: nextToken,
    };
  },

  DescribeAutoScalingGroups(input, { world }) {
    const names = asStrings(input.AutoScalingGroupNames) ?? [];
    const size = maxRecords(input, 100, 50);
    const groups = [...world.autoScaling.groups.values()].filter(
      (group) => names.length === 0 || names.includes(group.name),
    );
    const { page, nextToken } = paginate(groups, size, asString(input.NextToken), "InvalidNextToken");
    return {
      AutoScalingGroups: page.map((group) => ({
        AutoScalingGroupName: group.name,
        AutoScalingGroupARN: group.arn,
        LaunchTemplate: launchTemplate(group),
        MinSize: group.minSize,
        MaxSize: group.maxSize,
        DesiredCapacity: group.desiredCapacity,
        DefaultCooldown: 300,
        AvailabilityZones: group.availabilityZones,
        LoadBalancerNames: [],
        TargetGroupARNs: [],
        HealthCheckType: "EC2",
        HealthCheckGracePeriod: 300,
        // A warm pool's instances are not the group's: DescribeWarmPool lists them.
        Instances: groupInstances(world, group).map((instance) => instanceOutput(group, instance)),
        ...(group.warmPool
          ? {
              WarmPoolConfiguration: warmPoolConfiguration(group),
              WarmPoolSize: warmPoolInstances(world, group).length,
            }
          : {}),
        CreatedTime: new Date(group.createdAt),
        SuspendedProcesses: [],
        VPCZoneIdentifier: "subnet-0sandbox",
        EnabledMetrics: [],
        Tags: Object.entries(group.tags).map(([Key, Value]) => ({
          ResourceId: group.name,
          ResourceType: "auto-scaling-group",
          Key,
          Value,
          PropagateAtLaunch: true,
        })),
        TerminationPolicies: ["Default"],
        NewInstancesProtectedFromScaleIn: false,
        ServiceLinkedRoleARN: `arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
        CapacityRebalance: false,
      })),
      NextToken: nextToken,
    };
  },

  DescribeLifecycleHooks(input, { world }) {
    const group = world.autoScaling.group(required(input, "AutoScalingGroupName"));
    const names = asStrings(input.LifecycleHookNames) ?? [];
    if (names.length > 50) {
      throw new AwsServiceError(
        "ValidationError",
        "1 validation error detected: Value at 'lifecycleHookNames' failed to satisfy constraint: Member must have length less than or equal to 50",
      );
    }
    const hooks = [...group.hooks.values()].filter((hook) => names.length === 0 || names.includes(hook.name));
    return { LifecycleHooks: hooks.map(hookOutput) };
  },

  PutLifecycleHook(input, { world }) {
    world.autoScaling.putLifecycleHook({
      groupName: required(input, "AutoScalingGroupName"),
      hookName: required(input, "LifecycleHookName"),
      transition: asString(input.LifecycleTransition),
      heartbeatTimeout: asNumber(input.HeartbeatTimeout),
      defaultResult: asString(input.DefaultResult),
      notificationMetadata: asString(input.NotificationMetadata),
      notificationTargetArn: asString(input.NotificationTargetARN),
      roleArn: asString(input.RoleARN),
    });
    return {};
  },

  DeleteLifecycleHook(input, { world }) {
    world.autoScaling.deleteLifecycleHook(
      required(input, "AutoScalingGroupName"),
      required(input, "LifecycleHookName"),
    );
    return {};
  },

  CompleteLifecycleAction(input, { world }) {
    world.autoScaling.completeLifecycleAction(
      {
        groupName: required(input, "AutoScalingGroupName"),
        hookName: required(input, "LifecycleHookName"),
        token: asString(input.LifecycleActionToken),
        instanceId: asString(input.InstanceId),
        result: required(input, "LifecycleActionResult"),
      },
      "api",
    );
    return {};
  },

  RecordLifecycleActionHeartbeat(input, { world }) {
    world.autoScaling.recordHeartbeat({
      groupName: required(input, "AutoScalingGroupName"),
      hookName: required(input, "LifecycleHookName"),
      token: asString(input.LifecycleActionToken),
      instanceId: asString(input.InstanceId),
    });
    return {};
  },

  DescribeScalingActivities(input, { world }) {
    const groupName = asString(input.AutoScalingGroupName);
    const activityIds = asStrings(input.ActivityIds) ?? [];
    const size = maxRecords(input, 100, 100);
    if (groupName) world.autoScaling.group(groupName);
    const rows = world.autoScaling.activities
      .filter((activity) => !groupName || activity.AutoScalingGroupName === groupName)
      .filter((activity) => activityIds.length === 0 || activityIds.includes(activity.ActivityId))
      .sort((a, b) => b.StartTime - a.StartTime);
    const { page, nextToken } = paginate(rows, size, asString(input.NextToken), "InvalidNextToken");
    return {
      Activities: page.map((activity) => ({
        ActivityId: activity.ActivityId,
        AutoScalingGroupName: activity.AutoScalingGroupName,
        AutoScalingGroupARN: activity.AutoScalingGroupARN,
        Description: activity.Description,
        Cause: activity.Cause,
        StartTime: new Date(activity.StartTime),
        EndTime: activity.EndTime ? new Date(activity.EndTime) : undefined,
        StatusCode: activity.StatusCode,
        StatusMessage: activity.StatusMessage,
        Progress: activity.Progress,
        Details: activity.Details,
      })),
      NextToken: nextToken,
    };
  },

  PutWarmPool(input, { world }) {
    world.autoScaling.putWarmPool(required(input, "AutoScalingGroupName"), {
      minSize: asNumber(input.MinSize),
      maxGroupPreparedCapacity: asNumber(input.MaxGroupPreparedCapacity),
      poolState: asString(input.PoolState),
    });
    return {};
  },

  DescribeWarmPool(input, { world }) {
    const group = world.autoScaling.group(required(input, "AutoScalingGroupName"));
    const size = maxRecords(input, 50, 50);
    const { page, nextToken } = paginate(
      warmPoolInstances(world, group),
      size,
      asString(input.NextToken),
      "InvalidNextToken",
    );
    return {
      WarmPoolConfiguration: warmPoolConfiguration(group),
      Instances: page.map((instance) => instanceOutput(group, instance)),
      NextToken: nextToken,
    };
  },

  SetDesiredCapacity(input, { world }) {
    const desired = asNumber(input.DesiredCapacity);
    if (desired === undefined) {
      throw new AwsServiceError(
        "ValidationError",
        "1 validation error detected: Value null at 'desiredCapacity' failed to satisfy constraint: Member must not be null",
      );
    }
    world.autoScaling.setDesiredCapacity(required(input, "AutoScalingGroupName"), desired);
    return {};
  },
};
