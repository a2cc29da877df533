// Named errors of the functions, and how AWS errors are recognised and wrapped.

/** An AWS call failed for good (the SDK has already retried throttling); the AWS error is its `cause`. */
export class AwsCallError extends Error {
  override name = "AwsCallError";
}

export class EventValidationError extends Error {
  override name = "EventValidationError";
  constructor(
    message: string,
    readonly fields: string[],
  ) {
    super(message);
  }
}

/** The name AWS gave an error thrown by an SDK v3 client, or "" for anything else. */
export function awsErrorName(error: unknown): string {
  if (error && typeof error === "object" && "name" in error && typeof error.name === "string") {
    return error.name;
  }
  return "";
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Completing an action that is already completed, timed out or whose instance is gone answers
 * `ValidationError: No active Lifecycle Action found with token|instance ID ...`, with no distinct
 * code; it means the work is already over, not that it failed
 * (https://docs.aws.amazon.com/autoscaling/ec2/userguide/completing-lifecycle-hooks.html).
 */
export function isNoActiveAction(error: unknown): boolean {
  return (
    awsErrorName(error) === "ValidationError" && /No active Lifecycle Action found/i.test(errorMessage(error))
  );
}

const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "ProvisionedThroughputExceededException",
]);

/** Throttling and server-side faults that a later attempt can get past. */
export function isTransient(error: unknown): boolean {
  const name = awsErrorName(error);
  if (THROTTLING.has(name) || name === "InternalServerError" || name === "InternalFailure") return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return typeof status === "number" && status >= 500;
}

/**
 * Runs one AWS call and, when it fails, rethrows an AwsCallError that says which call on what failed,
 * keeping the AWS error as `cause`. Callers that expect an error (a missing invocation right after
 * SendCommand, a completed lifecycle action) catch it before this wrapper sees it.
 */
export async function callAws<T>(operation: string, subject: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw new AwsCallError(`${operation} for ${subject} failed: ${errorMessage(error)}`, { cause: error });
  }
}
