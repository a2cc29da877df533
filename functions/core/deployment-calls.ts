import { AwsCallError, errorMessage } from "./common/errors.js";

/**
 * Runs one CodeDeploy call and, when it fails, rethrows a named error that says which call on which
 * deployment failed, keeping the AWS error as `cause` (the SDK has already retried throttling).
 */
export async function callCodeDeploy<T>(
  operation: string,
  subject: string,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw new AwsCallError(`${operation} for ${subject} failed: ${errorMessage(error)}`, { cause: error });
  }
}

/** Splits a list into chunks of at most `size` (API batch limits). */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let index = 0; index < items.length; index += size) chunks.push(items.slice(index, index + size));
  return chunks;
}
