import * as z from "zod";
import { COMMAND_INVOCATION_DETAIL_TYPE, SSM_SOURCE } from "../core/contract.js";
import { EventBridgeSchema } from "./eventbridge.js";
import { INSTANCE_ID } from "./launch-event.js";
import { isObject, parseOrThrow } from "./parse.js";

/**
 * Run Command's "EC2 Command Invocation Status-change Notification": one command's invocation on one
 * instance changed status. It carries no output and no comment
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html).
 */
export const CommandInvocationEventSchema = EventBridgeSchema.extend({
  source: z.literal(SSM_SOURCE),
  "detail-type": z.literal(COMMAND_INVOCATION_DETAIL_TYPE),
  detail: z.object({
    "command-id": z.string().min(1).max(36),
    "document-name": z.string().min(1),
    // Run Command also runs on managed nodes (mi-...): such an event is read, then skipped with a reason.
    "instance-id": z.union([
      INSTANCE_ID,
      z.string().regex(/^mi-[0-9a-f]{17}$/, "a managed node id such as mi-0123456789abcdef0"),
    ]),
    "requested-date-time": z.string().optional(),
    status: z.string().min(1),
  }),
});

/** What the launch path takes from the event: which command ended where, and how. */
export interface CommandSignal {
  commandId: string;
  instanceId: string;
  documentName: string;
  status: string;
}

/** The signal when `input` is a command-invocation event (and a clear error when it is a bad one). */
export function parseCommandSignal(input: unknown): CommandSignal | undefined {
  if (!isObject(input) || input["detail-type"] !== COMMAND_INVOCATION_DETAIL_TYPE) return undefined;
  const { detail } = parseOrThrow(
    CommandInvocationEventSchema,
    input,
    `${COMMAND_INVOCATION_DETAIL_TYPE} event`,
  );
  return {
    commandId: detail["command-id"],
    instanceId: detail["instance-id"],
    documentName: detail["document-name"],
    status: detail.status,
  };
}
