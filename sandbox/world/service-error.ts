/**
 * An error as an AWS service answers it: the error code the SDK turns into the exception name, the
 * message, the HTTP status, and whether the caller (Sender) or the service (Receiver) is at fault.
 * The world raises these; the protocol layer writes them in each service's wire format.
 */
export class AwsServiceError extends Error {
  override name = "AwsServiceError";
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly fault: "Sender" | "Receiver" = status >= 500 ? "Receiver" : "Sender",
  ) {
    super(message);
  }
}

export const ACCOUNT_ID = "123456789012";

/** The message AWS puts in a constraint violation, e.g. a list longer than the model allows. */
export function constraintViolation(member: string, value: unknown, constraint: string): AwsServiceError {
  const shown = Array.isArray(value) ? `[${value.join(", ")}]` : String(value);
  return new AwsServiceError(
    "ValidationException",
    `1 validation error detected: Value '${shown}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}
