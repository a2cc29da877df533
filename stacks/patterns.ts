import {
  ALL,
  AUTOSCALING_SOURCE,
  CODEDEPLOY_SOURCE,
  COMMAND_END_STATUSES,
  COMMAND_INVOCATION_DETAIL_TYPE,
  DEPLOYMENT_DETAIL_TYPE,
  LAUNCH_DETAIL_TYPE,
  SSM_SOURCE,
} from "../functions/core/contract.js";

/**
 * EventBridge event patterns of the service, in one place: the stacks deploy them and the sandbox
 * routes its events through the very same patterns.
 */
export interface EventPattern {
  source: string[];
  "detail-type": string[];
  detail?: Record<string, unknown>;
}

/**
 * Launch lifecycle actions of our hook (its name, and the previous release's default name while it
 * is still recognised) on the groups in scope: the named groups, or every group only for `["*"]`.
 * An empty list has no pattern: a stage that names no group deploys no launch path.
 */
export function launchEventPattern(
  groups: readonly string[],
  hookNames: string | readonly string[],
): EventPattern {
  if (groups.length === 0) throw new RangeError("no launch pattern for a stage that names no group");
  const detail: Record<string, unknown> = {
    LifecycleHookName: typeof hookNames === "string" ? [hookNames] : [...hookNames],
  };
  if (!groups.includes(ALL)) detail.AutoScalingGroupName = [...groups];
  return { source: [AUTOSCALING_SOURCE], "detail-type": [LAUNCH_DETAIL_TYPE], detail };
}

/** Invocations of the stage's install document that ended: the launch path's "install done" signal. */
export function commandEndedEventPattern(installDocument: string): EventPattern {
  return {
    source: [SSM_SOURCE],
    "detail-type": [COMMAND_INVOCATION_DETAIL_TYPE],
    detail: { "document-name": [installDocument], status: [...COMMAND_END_STATUSES] },
  };
}

/**
 * Failed CodeDeploy deployments of the deployment groups in scope (every one only for `["*"]`). `deploymentGroups` holds
 * `application/group` pairs; the pattern narrows by application and group name, and the handler
 * checks the exact pair (EventBridge matches each field on its own).
 */
export function deploymentFailureEventPattern(deploymentGroups: readonly string[]): EventPattern {
  if (deploymentGroups.length === 0)
    throw new RangeError("no failure pattern for a stage that names no deployment group");
  const detail: Record<string, unknown> = { state: ["FAILURE"] };
  // Every deployment group only for the explicit "*".
  if (!deploymentGroups.includes(ALL)) {
    detail.application = [...new Set(deploymentGroups.map((pair) => pair.split("/")[0]))];
    detail.deploymentGroup = [...new Set(deploymentGroups.map((pair) => pair.split("/")[1]))];
  }
  return { source: [CODEDEPLOY_SOURCE], "detail-type": [DEPLOYMENT_DETAIL_TYPE], detail };
}

/**
 * Matches an event against a pattern with EventBridge semantics for the subset used here: every
 * field named in the pattern must be present, and a leaf array matches when the event's value (or
 * one of its values) equals one of the listed values.
 */
export function matchesPattern(pattern: object, event: unknown): boolean {
  if (event === null || typeof event !== "object") return false;
  for (const [key, expected] of Object.entries(pattern)) {
    const actual = (event as Record<string, unknown>)[key];
    if (Array.isArray(expected)) {
      const values = Array.isArray(actual) ? actual : [actual];
      if (!values.some((value) => expected.includes(value))) return false;
    } else if (expected && typeof expected === "object") {
      if (!matchesPattern(expected, actual)) return false;
    }
  }
  return true;
}
