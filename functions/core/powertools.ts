import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";

/** One service name for logs, metrics and traces of every function. */
export const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? "agentfix";
export const METRICS_NAMESPACE = process.env.POWERTOOLS_METRICS_NAMESPACE ?? "Agentfix";

export const logger = new Logger({ serviceName: SERVICE_NAME });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });
export const tracer = new Tracer({ serviceName: SERVICE_NAME });
