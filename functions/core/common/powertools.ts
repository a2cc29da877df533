// The Powertools singletons (logger, metrics, tracer) of every function, with one service name, and
// the one middleware chain every handler uses, in the same order.
import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { Tracer } from "@aws-lambda-powertools/tracer";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import type { MiddlewareObj } from "@middy/core";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../contract.js";

// The stack sets the same values in POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE.
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME;
const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE;

export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ namespace, serviceName });
export const tracer = new Tracer({ serviceName });

/**
 * Logger, metrics, tracer, in that order, for every handler: the Lambda context and a fresh set of
 * keys on each log line, the metrics flushed after each invocation, a trace segment around it.
 */
export function observability(): MiddlewareObj[] {
  return [
    injectLambdaContext(logger, { resetKeys: true }),
    logMetrics(metrics),
    captureLambdaHandler(tracer),
  ];
}
