/**
 * AWS JSON 1.0 / 1.1 (SSM, CodeDeploy: 1.1; DynamoDB, SQS: 1.0): `POST /` with `X-Amz-Target:
 * <Service>.<Operation>`, timestamps as epoch seconds, errors as `{"__type": ..., "message": ...}`.
 * https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html
 */

/** Replaces Date values by epoch seconds, the JSON protocols' timestamp format. */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = toJsonValue(item);
    return out;
  }
  return value;
}

export function jsonError(type: string, message: string): string {
  return JSON.stringify({ __type: type, message });
}
