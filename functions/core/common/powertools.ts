// The Powertools singletons (logger, metrics, tracer) of every function, with one service name, and
// the one middleware chain every handler uses, in the same order. The tracer (and the X-Ray SDK it
// carries) is loaded only when tracing is on: with POWERTOOLS_TRACE_ENABLED=false a cold start
// neither loads nor evaluates it.
import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { MiddlewareObj } from "@middy/core";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../contract.js";

// The stack sets the same values in POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE.
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME;
const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE;

// Every function gets STAGE (stacks/environment.ts): each datapoint carries the stage as a default
// dimension, so two stages in one account never mix their metrics, and each stage's alarms and
// dashboard read only their own (stacks/Monitoring.ts).
const stage = process.env.STAGE;

export const logger = new Logger({ serviceName, ...(stage ? { persistentKeys: { stage } } : {}) });
export const metrics = new Metrics({
  namespace,
  serviceName,
  ...(stage ? { defaultDimensions: { stage } } : {}),
});

async function loadTracer() {
  const [{ Tracer }, { captureLambdaHandler }] = await Promise.all([
    import("@aws-lambda-powertools/tracer"),
    import("@aws-lambda-powertools/tracer/middleware"),
  ]);
  const tracer = new Tracer({ serviceName });
  return { tracer, middleware: captureLambdaHandler(tracer) };
}

const tracing = process.env.POWERTOOLS_TRACE_ENABLED === "false" ? undefined : await loadTracer();

/** The client, its calls traced as X-Ray subsegments when tracing is on. */
export function traced<T>(client: T): T {
  return tracing ? tracing.tracer.captureAWSv3Client(client) : client;
}

/**
 * Logger, metrics, tracer, in that order, for every handler: the Lambda context and a fresh set of
 * keys on each log line, the metrics flushed after each invocation, a trace segment around it.
 */
export function observability(): MiddlewareObj[] {
  return [
    injectLambdaContext(logger, { resetKeys: true }),
    logMetrics(metrics),
    ...(tracing ? [tracing.middleware] : []),
  ];
}
