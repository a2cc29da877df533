import type { RateLimit } from "./traffic.js";

/**
 * API rates the throttled scenarios use. AWS publishes no per-operation TPS quota for the SSM and
 * Auto Scaling operations the service calls (no number in the Service Quotas pages or the API
 * references), so these are assumptions: a sustained rate and a burst per operation and per
 * account, of the order customers report being throttled at. Every run that uses them prints them
 * next to its figures.
 */
export const ASSUMED_RATE_LIMITS: Record<string, RateLimit> = {
  "SSM.*": { rate: 10, burst: 20 },
  "AutoScaling.*": { rate: 10, burst: 20 },
  "CodeDeploy.*": { rate: 10, burst: 20 },
  "DynamoDB.*": { rate: 1000, burst: 1000 },
  "SQS.*": { rate: 300, burst: 300 },
};
