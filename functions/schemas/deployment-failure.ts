import * as z from "zod";
import { EventValidationError } from "../core/common/errors.js";
import { CODEDEPLOY_SOURCE, DEPLOYMENT_DETAIL_TYPE } from "../core/contract.js";
import { EventBridgeSchema } from "./eventbridge.js";
import { isObject, parseOrThrow } from "./parse.js";

/**
 * What the deployment-failure function accepts: the raw EventBridge `CodeDeploy Deployment
 * State-change Notification` (what the rule delivers, and what an operator pastes into the Lambda
 * console), a replay payload `{"deploymentId": "d-..."}`, or an SQS batch from its retry queue whose
 * records are `{"deploymentId": "d-...", "firstSeenAt": "<ISO time>"}`.
 * Event fields: https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-codedeploy.html
 */

// CodeDeploy deployment ids are "d-" followed by upper-case letters and digits (d-ABCDEF123).
const deploymentId = z.string().regex(/^d-[A-Za-z0-9]+$/, "a CodeDeploy deployment id such as d-ABCDEF123");

export const DeploymentStateChangeEventSchema = EventBridgeSchema.extend({
  source: z.literal(CODEDEPLOY_SOURCE),
  "detail-type": z.literal(DEPLOYMENT_DETAIL_TYPE),
  detail: z.object({
    deploymentId,
    application: z.string().min(1),
    deploymentGroup: z.string().min(1),
    state: z.enum(["START", "STOP", "SUCCESS", "FAILURE", "READY"]),
    region: z.string().optional(),
    instanceGroupId: z.string().optional(),
  }),
});

export const DeploymentReplaySchema = z.strictObject({ deploymentId });

/** A failure put back on the retry queue: since when the function has been waiting to act on it. */
export const FailureRetryMessageSchema = z.strictObject({ deploymentId, firstSeenAt: z.iso.datetime() });

export type DeploymentStateChangeEvent = z.infer<typeof DeploymentStateChangeEventSchema>;
export type DeploymentReplay = z.infer<typeof DeploymentReplaySchema>;
export type FailureRetryMessage = z.infer<typeof FailureRetryMessageSchema>;

/** The one thing the domain needs from any input, plus where it came from (for the logs). */
export interface DeploymentFailureInput {
  deploymentId: string;
  source: "event" | "replay" | "retry";
  eventId?: string;
  /** AWS-time ms the function first saw the failure (retry messages carry it). */
  firstSeenAt?: number;
}

/** Reads one record body of the retry queue; one error names every bad field. */
export function parseFailureRetryMessage(body: string): DeploymentFailureInput {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new EventValidationError("Invalid failure retry message: the body is not JSON", ["(body)"]);
  }
  const message = parseOrThrow(
    FailureRetryMessageSchema,
    value,
    'failure retry message {"deploymentId":"d-...","firstSeenAt":"..."}',
  );
  return {
    deploymentId: message.deploymentId,
    source: "retry",
    firstSeenAt: Date.parse(message.firstSeenAt),
  };
}

const EVENT_KEYS = ["source", "detail-type", "detail"];

/**
 * Parses either input shape. The shape is chosen by the keys an EventBridge event has, so a broken
 * event is reported against the event schema (not as "also not a replay payload"), and one error
 * names every bad field.
 */
export function parseDeploymentFailureInput(input: unknown): DeploymentFailureInput {
  if (!isObject(input)) {
    throw new EventValidationError(
      `Invalid deployment-failure input: expected a ${DEPLOYMENT_DETAIL_TYPE} or {"deploymentId":"d-..."}`,
      ["(root)"],
    );
  }
  if (EVENT_KEYS.some((key) => key in input)) {
    const event = parseOrThrow(DeploymentStateChangeEventSchema, input, DEPLOYMENT_DETAIL_TYPE);
    return { deploymentId: event.detail.deploymentId, source: "event", eventId: event.id };
  }
  const replay = parseOrThrow(DeploymentReplaySchema, input, 'replay payload {"deploymentId":"d-..."}');
  return { deploymentId: replay.deploymentId, source: "replay" };
}
