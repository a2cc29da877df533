// Reading a failed instance of a CodeDeploy deployment: is the agent to blame (upgrading it and
// redeploying can help), the application (a retry would only fail again), or something else?
// Sources: https://docs.aws.amazon.com/codedeploy/latest/userguide/error-codes.html and
// https://docs.aws.amazon.com/codedeploy/latest/userguide/troubleshooting-deployments.html
import type { LifecycleEvent } from "@aws-sdk/client-codedeploy";

/**
 * Deployment-level error codes an agent cannot cause: the revision, the application, the group, IAM,
 * alarms, an operator's stop, load balancers, capacity. Codes are matched as strings because the
 * user guide lists codes the API enum lacks (UNABLE_TO_SEND_ASG).
 */
export const NON_AGENT_ERROR_CODES: ReadonlySet<string> = new Set([
  "INVALID_REVISION",
  "REVISION_MISSING",
  "APPLICATION_MISSING",
  "DEPLOYMENT_GROUP_MISSING",
  "IAM_ROLE_MISSING",
  "IAM_ROLE_PERMISSIONS",
  "ALARM_ACTIVE",
  "MANUAL_STOP",
  "NO_INSTANCES",
  "NO_EC2_SUBSCRIPTION",
  "OVER_MAX_INSTANCES",
  "RESOURCE_LIMIT_EXCEEDED",
  "MISSING_GITHUB_TOKEN",
  "CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND",
  "AUTO_SCALING_IAM_ROLE_PERMISSIONS",
  "AUTO_SCALING_CONFIGURATION",
  "AUTOSCALING_VALIDATION_ERROR",
  "UNABLE_TO_SEND_ASG",
  "ELASTIC_LOAD_BALANCING_INVALID",
  "ELB_INVALID_INSTANCE",
  "MISSING_ELB_INFORMATION",
  "MISSING_BLUE_GREEN_DEPLOYMENT_CONFIGURATION",
  "HEALTH_CONSTRAINTS_INVALID",
  "CLOUDFORMATION_STACK_FAILURE",
  "ECS_UPDATE_ERROR",
  "INVALID_ECS_SERVICE",
  "CUSTOMER_APPLICATION_UNHEALTHY",
  "INVALID_LAMBDA_CONFIGURATION",
  "INVALID_LAMBDA_FUNCTION",
  "HOOK_EXECUTION_FAILURE",
]);

/** "The deployment failed because of a problem with the CodeDeploy agent" (error-codes.html). */
export const AGENT_ISSUE = "AGENT_ISSUE";

export function isNonAgentErrorCode(code: string | undefined): boolean {
  return code !== undefined && NON_AGENT_ERROR_CODES.has(code);
}

export type TargetClassification = "AGENT" | "APPLICATION" | "OTHER";

/** A failed instance as CodeDeploy reports it, from either the targets or the instances API. */
export interface FailedTargetRecord {
  instanceId: string;
  lifecycleEvents: LifecycleEvent[];
}

export interface ClassifiedTarget {
  instanceId: string;
  classification: TargetClassification;
  lifecycleEvent?: string;
  errorCode?: string;
  scriptName?: string;
  message?: string;
}

const APPLICATION_ERROR_CODES: ReadonlySet<string> = new Set([
  "ScriptFailed",
  "ScriptMissing",
  "ScriptNotExecutable",
  "ScriptTimedOut",
]);

/**
 * Diagnostics messages that mean the agent, not the script, failed:
 * - backfilled by CodeDeploy when the agent never picked up the lifecycle event
 *   (https://github.com/aws/aws-codedeploy-agent/issues/307);
 * - the agent restarted in the middle of the event (https://github.com/aws/aws-codedeploy-agent/issues/402);
 * - an agent too old to validate SHA-2 signed messages (troubleshooting-deployments.html).
 */
const AGENT_MESSAGES = [
  "codedeploy agent was not able to receive the lifecycle event",
  "failing in-progress lifecycle event after an agent restart",
  "validation of pkcs7 signed message failed",
];

const MAX_MESSAGE_CHARS = 300;

/** Classifies one failed instance from its lifecycle events, naming the event that decided. */
export function classifyTarget(target: FailedTargetRecord): ClassifiedTarget {
  const events = target.lifecycleEvents;
  const agentEvent = events.find((event) => {
    const message = event.diagnostics?.message?.toLowerCase() ?? "";
    return AGENT_MESSAGES.some((signature) => message.includes(signature));
  });
  if (agentEvent) return describe(target.instanceId, "AGENT", agentEvent);

  // "If all lifecycle events of an EC2 or on-premises deployment are skipped ... The CodeDeploy agent
  // might not be installed or running" (troubleshooting-deployments.html). Only a Failed target counts:
  // instances CodeDeploy never reached after another one failed are Skipped targets, not Failed ones.
  if (events.length > 0 && events.every((event) => event.status === "Skipped")) {
    return {
      instanceId: target.instanceId,
      classification: "AGENT",
      message: "every lifecycle event was skipped: the agent is not installed or not running",
    };
  }

  const applicationEvent = events.find((event) =>
    APPLICATION_ERROR_CODES.has(event.diagnostics?.errorCode ?? ""),
  );
  if (applicationEvent) return describe(target.instanceId, "APPLICATION", applicationEvent);

  const failedEvent =
    events.find((event) => event.status === "Failed") ??
    events.find((event) => event.diagnostics?.errorCode && event.diagnostics.errorCode !== "Success");
  return failedEvent
    ? describe(target.instanceId, "OTHER", failedEvent)
    : { instanceId: target.instanceId, classification: "OTHER" };
}

function describe(
  instanceId: string,
  classification: TargetClassification,
  event: LifecycleEvent,
): ClassifiedTarget {
  const diagnostics = event.diagnostics;
  const message = diagnostics?.message?.trim();
  return {
    instanceId,
    classification,
    ...(event.lifecycleEventName ? { lifecycleEvent: event.lifecycleEventName } : {}),
    ...(diagnostics?.errorCode ? { errorCode: diagnostics.errorCode } : {}),
    ...(diagnostics?.scriptName ? { scriptName: diagnostics.scriptName } : {}),
    ...(message ? { message: truncate(message, MAX_MESSAGE_CHARS) } : {}),
  };
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
