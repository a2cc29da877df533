import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import middy from "@middy/core";
import { loadSweepConfig } from "./core/config.js";
import { EventValidationError } from "./core/errors.js";
import { logger, metrics, tracer } from "./core/powertools.js";
import { type SweepReport, sweepStaleLaunches } from "./core/sweep.js";
import { sweepEventSchema } from "./schemas/sweep-event.js";

const config = loadSweepConfig();

/** Scheduled: enqueues instances stuck in Pending:Wait on our launch hook for the launch function. */
export async function sweep(event: unknown): Promise<SweepReport> {
  const parsed = sweepEventSchema.safeParse(event ?? {});
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => issue.path.join(".") || "(event)");
    throw new EventValidationError(`Invalid sweep event: ${fields.join(", ")}`, fields);
  }
  const report = await sweepStaleLaunches({
    groups: config.TARGET_GROUPS,
    hookName: config.LIFECYCLE_HOOK_NAME,
    queueUrl: config.LAUNCH_QUEUE_URL,
    staleAfterSeconds: config.STALE_AFTER_SECONDS,
    dryRun: config.DRY_RUN || parsed.data.dryRun === true,
  });
  metrics.addMetric("SweepExamined", MetricUnit.Count, report.examined);
  metrics.addMetric("SweepStale", MetricUnit.Count, report.stale.length);
  metrics.addMetric("SweepEnqueued", MetricUnit.Count, report.enqueued);
  logger.info("Sweep finished", { report });
  return report;
}

export const handler = middy(sweep)
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
