// Sweep entry point, on a schedule: puts instances stuck in Pending:Wait on our launch hook back on
// the launch queue (lifecycle events are best effort). From the Lambda console, `{"dryRun": true}`
// reports what it would enqueue.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import middy from "@middy/core";
import { logger, metrics, observability } from "./core/common/powertools.js";
import { loadSweepConfig } from "./core/config.js";
import { METRIC } from "./core/contract.js";
import { type SweepReport, sweepStaleLaunches } from "./core/launch/sweep.js";
import { parseOrThrow } from "./schemas/parse.js";
import { sweepEventSchema } from "./schemas/sweep-event.js";

const config = loadSweepConfig();

export async function handleSweep(event: unknown): Promise<SweepReport> {
  const input = parseOrThrow(sweepEventSchema, event ?? {}, "sweep event");
  const report = await sweepStaleLaunches({ ...config, DRY_RUN: config.DRY_RUN || input.dryRun === true });
  metrics.addMetric(METRIC.sweepExamined, MetricUnit.Count, report.examined);
  metrics.addMetric(METRIC.sweepStale, MetricUnit.Count, report.stale.length);
  metrics.addMetric(METRIC.sweepEnqueued, MetricUnit.Count, report.enqueued);
  logger.info("Sweep finished", { report });
  return report;
}

export const handler = middy(handleSweep).use(observability());
