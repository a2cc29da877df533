import * as z from "zod";

/** The part of an SQS event-source batch the functions read. */
export const SqsBatchSchema = z.object({
  Records: z
    .array(
      z.object({
        messageId: z.string().min(1),
        body: z.string(),
        receiptHandle: z.string().optional(),
        eventSource: z.literal("aws:sqs").optional(),
      }),
    )
    .min(1),
});
