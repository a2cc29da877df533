import * as z from "zod";

/**
 * What the sweep accepts: the EventBridge Scheduler / scheduled-rule event (its fields are not
 * used), or, from the Lambda console, `{}` or `{"dryRun": true}` to report without enqueuing.
 * A console payload can only switch dry-run on, never off when the stage is configured dry.
 */
export const sweepEventSchema = z
  .object({
    "detail-type": z.string().optional(),
    source: z.string().optional(),
    dryRun: z.boolean().optional(),
  })
  .passthrough();

export type SweepEvent = z.infer<typeof sweepEventSchema>;
