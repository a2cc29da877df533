import * as z from "zod";

/**
 * The EventBridge envelope (https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html).
 * Defined here rather than imported from the Powertools parser, whose schemas pull every zod locale
 * into the bundle (about 0.4 MB) and slow each cold start; `import * as z` lets esbuild drop what
 * is unused.
 */
export const EventBridgeSchema = z.object({
  version: z.string(),
  id: z.string(),
  source: z.string(),
  account: z.string(),
  time: z.iso.datetime(),
  region: z.string(),
  resources: z.array(z.string()),
  "detail-type": z.string(),
  detail: z.unknown(),
  "replay-name": z.string().optional(),
});
