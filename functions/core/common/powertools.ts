import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";

import { METRICS_NAMESPACE, SERVICE_NAME } from "../contract.js";

// One service name for logs, metrics and traces of every function; the stack sets the same values
// in POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE.
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME;
const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE;

export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ namespace, serviceName });
export const tracer = new Tracer({ serviceName });
