import { AwsServiceError } from "../world/service-error.js";

/** Opaque NextToken paging over a list; a token from elsewhere is rejected as AWS does. */
export function paginate<T>(
  items: readonly T[],
  pageSize: number,
  token: string | undefined,
  invalidTokenCode: string,
): { page: T[]; nextToken?: string } {
  let offset = 0;
  if (token) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      if (!parsed || typeof parsed !== "object" || typeof (parsed as { o?: unknown }).o !== "number") {
        throw new TypeError("not a sandbox token");
      }
      offset = (parsed as { o: number }).o;
    } catch {
      throw new AwsServiceError(invalidTokenCode, "The specified token is not valid.");
    }
  }
  const page = items.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  return {
    page,
    nextToken:
      next < items.length ? Buffer.from(JSON.stringify({ o: next })).toString("base64url") : undefined,
  };
}
