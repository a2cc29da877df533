import {
  AUTOSCALING_SOURCE,
  CODEDEPLOY_SOURCE,
  COMMAND_INVOCATION_DETAIL_TYPE,
  DEPLOYMENT_DETAIL_TYPE,
  LAUNCH_DETAIL_TYPE,
  LAUNCH_TRANSITION,
  SSM_SOURCE,
} from "../../functions/core/contract.js";
import { ACCOUNT_ID } from "../world/service-error.js";

/**
 * EventBridge events in the shapes AWS documents (see tests/events/ and
 * https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html,
 * https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-codedeploy.html).
 */
export interface EventBridgeEvent<Detail = Record<string, unknown>> {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Detail;
}

export const INSTANCE_DETAIL_TYPE = "CodeDeploy Instance State-change Notification";

/** EventBridge writes `time` to the second, without milliseconds. */
export function eventTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

export function launchLifecycleEvent(fields: {
  id: string;
  at: number;
  region: string;
  groupArn: string;
  token: string;
  groupName: string;
  hookName: string;
  instanceId: string;
  notificationMetadata?: string;
  origin?: "EC2" | "AutoScalingGroup" | "WarmPool";
  destination?: "EC2" | "AutoScalingGroup" | "WarmPool";
}): EventBridgeEvent {
  const detail: Record<string, unknown> = {
    LifecycleActionToken: fields.token,
    AutoScalingGroupName: fields.groupName,
    LifecycleHookName: fields.hookName,
    EC2InstanceId: fields.instanceId,
    LifecycleTransition: LAUNCH_TRANSITION,
  };
  if (fields.notificationMetadata !== undefined) detail.NotificationMetadata = fields.notificationMetadata;
  if (fields.origin) detail.Origin = fields.origin;
  if (fields.destination) detail.Destination = fields.destination;
  return {
    version: "0",
    id: fields.id,
    "detail-type": LAUNCH_DETAIL_TYPE,
    source: AUTOSCALING_SOURCE,
    account: ACCOUNT_ID,
    time: eventTime(fields.at),
    region: fields.region,
    resources: [fields.groupArn],
    detail,
  };
}

export function deploymentStateEvent(fields: {
  id: string;
  at: number;
  region: string;
  applicationName: string;
  deploymentGroupName: string;
  deploymentGroupId: string;
  deploymentId: string;
  state: "START" | "STOP" | "SUCCESS" | "FAILURE" | "READY";
  instanceId?: string;
}): EventBridgeEvent {
  const detail: Record<string, unknown> = {
    instanceGroupId: fields.deploymentGroupId,
    region: fields.region,
    application: fields.applicationName,
    deploymentId: fields.deploymentId,
    state: fields.state,
    deploymentGroup: fields.deploymentGroupName,
  };
  if (fields.instanceId) detail.instanceId = fields.instanceId;
  return {
    account: ACCOUNT_ID,
    region: fields.region,
    "detail-type": fields.instanceId ? INSTANCE_DETAIL_TYPE : DEPLOYMENT_DETAIL_TYPE,
    source: CODEDEPLOY_SOURCE,
    version: "0",
    time: eventTime(fields.at),
    id: fields.id,
    resources: [
      `arn:aws:codedeploy:${fields.region}:${ACCOUNT_ID}:application:${fields.applicationName}`,
      `arn:aws:codedeploy:${fields.region}:${ACCOUNT_ID}:deploymentgroup:${fields.applicationName}/${fields.deploymentGroupName}`,
    ],
    detail,
  } as EventBridgeEvent;
}

/**
 * Run Command's per-instance status change, as in tests/events/ssm-command-invocation-status-change.json
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html).
 */
export function commandInvocationEvent(fields: {
  id: string;
  at: number;
  region: string;
  commandId: string;
  documentName: string;
  instanceId: string;
  requestedAt: number;
  status: string;
}): EventBridgeEvent {
  return {
    version: "0",
    id: fields.id,
    "detail-type": COMMAND_INVOCATION_DETAIL_TYPE,
    source: SSM_SOURCE,
    account: ACCOUNT_ID,
    time: eventTime(fields.at),
    region: fields.region,
    resources: [`arn:aws:ec2:${fields.region}:${ACCOUNT_ID}:instance/${fields.instanceId}`],
    detail: {
      "command-id": fields.commandId,
      "document-name": fields.documentName,
      "instance-id": fields.instanceId,
      "requested-date-time": new Date(fields.requestedAt).toISOString(),
      status: fields.status,
    },
  };
}
