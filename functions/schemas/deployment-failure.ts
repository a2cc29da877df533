import * as z from "zod";
import { EventValidationError } from "../core/errors.js";
import { EventBridgeSchema } from "./eventbridge.js";

/**
 * What the deployment-failure function accepts: the raw EventBridge `CodeDeploy Deployment
 * State-change Notification` (what the rule delivers, and what an operator pastes into the Lambda
 * console), or a replay payload `{"deploymentId": "d-..."}`.
 * Event fields: https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-codedeploy.html
 */
export const DEPLOYMENT_FAILURE_DETAIL_TYPE = "CodeDeploy Deployment State-change Notification";

// CodeDeploy deployment ids are "d-" followed by upper-case letters and digits (d-ABCDEF123).
const deploymentId = z.string().regex(/^d-[A-Za-z0-9]+$/, "a CodeDeploy deployment id such as d-ABCDEF123");

export const DeploymentStateChangeEventSchema = EventBridgeSchema.extend({
  source: z.literal("aws.codedeploy"),
  "detail-type": z.literal(DEPLOYMENT_FAILURE_DETAIL_TYPE),
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

export type DeploymentStateChangeEvent = z.infer<typeof DeploymentStateChangeEventSchema>;
export type DeploymentReplay = z.infer<typeof DeploymentReplaySchema>;

/** The one thing the domain needs from either input, plus where it came from (for the logs). */
export interface DeploymentFailureInput {
  deploymentId: string;
  source: "event" | "replay";
  eventId?: string;
}

const EVENT_KEYS = ["source", "detail-type", "detail"];

/**
 * Parses either input shape. The shape is chosen by the keys an EventBridge event has, so a broken
 * event is reported against the event schema (not as "also not a replay payload"), and one error
 * names every bad field.
 */
export function parseDeploymentFailureInput(input: unknown): DeploymentFailureInput {
  const isObject = typeof input === "object" && input !== null && !Array.isArray(input);
  if (!isObject) {
    throw new EventValidationError(
      'Invalid deployment-failure input: expected a CodeDeploy Deployment State-change Notification or {"deploymentId":"d-..."}',
      ["(root)"],
    );
  }
  const looksLikeEvent = EVENT_KEYS.some((key) => key in input);
  if (looksLikeEvent) {
    const result = DeploymentStateChangeEventSchema.safeParse(input);
    if (!result.success)
      throw validationError("CodeDeploy Deployment State-change Notification", result.error);
    return { deploymentId: result.data.detail.deploymentId, source: "event", eventId: result.data.id };
  }
  const result = DeploymentReplaySchema.safeParse(input);
  if (!result.success) throw validationError('replay payload {"deploymentId":"d-..."}', result.error);
  return { deploymentId: result.data.deploymentId, source: "replay" };
}

function validationError(what: string, error: z.ZodError): EventValidationError {
  const fields: string[] = [];
  const problems: string[] = [];
  for (const issue of error.issues) {
    // An unrecognized key is reported on the object that holds it; name the keys themselves.
    const paths =
      issue.code === "unrecognized_keys"
        ? issue.keys.map((key) => [...issue.path, key].join("."))
        : [issue.path.join(".") || "(root)"];
    for (const path of paths) {
      fields.push(path);
      problems.push(`${path}: ${issue.message}`);
    }
  }
  return new EventValidationError(`Invalid ${what}: ${problems.join("; ")}`, fields);
}
