import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import middy from "@middy/core";
import { logger, metrics, tracer } from "./core/common/powertools.js";
import { loadSweepConfig } from "./core/config.js";
import { METRIC } from "./core/contract.js";
import { type SweepReport, sweepStaleLaunches } from "./core/sweep.js";
import { parseOrThrow } from "./schemas/parse.js";
import { sweepEventSchema } from "./schemas/sweep-event.js";

const config = loadSweepConfig();

/** Scheduled: enqueues instances stuck in Pending:Wait on our launch hook for the launch function. */
export async function sweep(event: unknown): Promise<SweepReport> {
  const input = parseOrThrow(sweepEventSchema, event ?? {}, "sweep event");
  const report = await sweepStaleLaunches({
    groups: config.TARGET_GROUPS,
    hookName: config.LIFECYCLE_HOOK_NAME,
    queueUrl: config.LAUNCH_QUEUE_URL,
    staleAfterSeconds: config.STALE_AFTER_SECONDS,
    dryRun: config.DRY_RUN || input.dryRun === true,
  });
  metrics.addMetric(METRIC.sweepExamined, MetricUnit.Count, report.examined);
  metrics.addMetric(METRIC.sweepStale, MetricUnit.Count, report.stale.length);
  metrics.addMetric(METRIC.sweepEnqueued, MetricUnit.Count, report.enqueued);
  logger.info("Sweep finished", { report });
  return report;
}

export const handler = middy(sweep)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer))
  .use(logMetrics(metrics));
