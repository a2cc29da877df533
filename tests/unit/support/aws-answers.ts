// Builders of the answers SSM and Auto Scaling give the launch path, shaped like the real responses
// and errors. Pure: each builds one answer from its arguments; what AWS answers when is up to the test.
import {
  AutoScalingServiceException,
  type DescribeAutoScalingInstancesCommandOutput,
  type DescribeLifecycleHooksCommandOutput,
} from "@aws-sdk/client-auto-scaling";
import {
  type CommandInvocation,
  type CommandInvocationStatus,
  type DescribeInstanceInformationCommandOutput,
  type ListCommandInvocationsCommandOutput,
  type PlatformType,
  type SendCommandCommandOutput,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { clock } from "../../../functions/core/common/clock.js";

type Answer<T> = Omit<T, "$metadata">;

/** DescribeLifecycleHooks: the group's one launch hook. */
export function launchHook(
  group: string,
  hook: string,
  heartbeatTimeoutSeconds = 900,
): Answer<DescribeLifecycleHooksCommandOutput> {
  return {
    LifecycleHooks: [
      {
        LifecycleHookName: hook,
        AutoScalingGroupName: group,
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: heartbeatTimeoutSeconds,
        GlobalTimeout: heartbeatTimeoutSeconds * 100,
        DefaultResult: "ABANDON",
      },
    ],
  };
}

/** DescribeAutoScalingInstances: these instances of the group, each in its lifecycle state. */
export function lifecycleStates(
  group: string,
  ...instances: [instanceId: string, lifecycleState: string][]
): Answer<DescribeAutoScalingInstancesCommandOutput> {
  return {
    AutoScalingInstances: instances.map(([instanceId, lifecycleState]) => ({
      InstanceId: instanceId,
      AutoScalingGroupName: group,
      AvailabilityZone: "us-east-1a",
      LifecycleState: lifecycleState,
      HealthStatus: "HEALTHY",
      ProtectedFromScaleIn: false,
    })),
  };
}

/** DescribeInstanceInformation: these instances Online with SSM (an empty list: not registered yet). */
export function online(
  instanceIds: readonly string[],
  platform: PlatformType = "Linux",
): Answer<DescribeInstanceInformationCommandOutput> {
  return {
    InstanceInformationList: instanceIds.map((instanceId) => ({
      InstanceId: instanceId,
      PingStatus: "Online",
      PlatformType: platform,
      ResourceType: "EC2Instance",
    })),
  };
}

/** SendCommand: the command was accepted under this id. */
export function commandSent(commandId: string): Answer<SendCommandCommandOutput> {
  return { Command: { CommandId: commandId, Status: "Pending" } };
}

/** ListCommandInvocations: these invocations, in one page. */
export function listed(...invocations: CommandInvocation[]): Answer<ListCommandInvocationsCommandOutput> {
  return { CommandInvocations: invocations };
}

/**
 * One instance's invocation of a command. `output` is what the script printed; SSM returns it (in
 * CommandPlugins) only when asked with Details, as the verification polls are.
 */
export function invocation(
  commandId: string,
  instanceId: string,
  status: CommandInvocationStatus,
  output?: string,
  extra: Partial<CommandInvocation> = {},
): CommandInvocation {
  return {
    CommandId: commandId,
    InstanceId: instanceId,
    Status: status,
    StatusDetails: status,
    RequestedDateTime: new Date(clock.now()),
    ...(output === undefined ? {} : { CommandPlugins: [{ Output: output }] }),
    ...extra,
  };
}

/** The line the verification script prints. */
export function probeOutput(state: "running" | "stopped" | "missing", version: string): string {
  return `AGENTFIX_AGENT_STATUS=${state} AGENTFIX_AGENT_VERSION=${version}\n`;
}

/** SSM's throttling answer (the SDK models no class for it on these operations). */
export function ssmThrottling(): SSMServiceException {
  return new SSMServiceException({
    name: "ThrottlingException",
    $fault: "client",
    message: "Rate exceeded",
    $metadata: { httpStatusCode: 400 },
  });
}

/** Auto Scaling's throttling answer (query protocol: the code is `Throttling`). */
export function autoScalingThrottling(): AutoScalingServiceException {
  return new AutoScalingServiceException({
    name: "Throttling",
    $fault: "client",
    message: "Rate exceeded",
    $metadata: { httpStatusCode: 400 },
  });
}

/** What CompleteLifecycleAction answers once the action is over (completed, timed out, instance gone). */
export function noActiveLifecycleAction(token: string): AutoScalingServiceException {
  return new AutoScalingServiceException({
    name: "ValidationError",
    $fault: "client",
    message: `No active Lifecycle Action found with token ${token}`,
    $metadata: { httpStatusCode: 400 },
  });
}
