import { AwsServiceError } from "../service-error.js";
import type { CodeDeployOptions } from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";

/**
 * "Number of concurrent deployments per account: 1,000", and "each deployment to a scaled-up Amazon
 * EC2 instance counts as a single concurrent deployment" (quotas page,
 * https://docs.aws.amazon.com/codedeploy/latest/userguide/limits.html): user deployments and launch
 * deployments share one account-wide budget.
 */
export const DEFAULT_MAX_CONCURRENT_DEPLOYMENTS = 1000;

/** CreateDeployment's error when the account runs its quota (API reference: "The number of allowed deployments was exceeded."). */
export const ACCOUNT_LIMIT_MESSAGE = "The number of allowed deployments was exceeded.";

export function concurrentDeploymentLimit(options: CodeDeployOptions): number {
  return options.maxConcurrentDeployments ?? DEFAULT_MAX_CONCURRENT_DEPLOYMENTS;
}

/** True when the account already runs as many deployments as its quota allows. */
export function accountAtLimit(registry: CodeDeployRegistry, options: CodeDeployOptions): boolean {
  return registry.active().length >= concurrentDeploymentLimit(options);
}

/** CreateDeployment beyond the quota fails as the per-group limit does, with DeploymentLimitExceededException. */
export function assertBelowAccountLimit(registry: CodeDeployRegistry, options: CodeDeployOptions): void {
  if (accountAtLimit(registry, options))
    throw new AwsServiceError("DeploymentLimitExceededException", ACCOUNT_LIMIT_MESSAGE);
}
