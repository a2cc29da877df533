import type { z } from "zod";
import { EventValidationError } from "../core/errors.js";

/**
 * Parses input with a schema, or throws one `EventValidationError` that names every bad field
 * (`detail.EC2InstanceId: ...; detail.LifecycleActionToken: ...`).
 */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => issue.path.join(".") || "(root)");
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
  );
  throw new EventValidationError(`Invalid ${what}: ${problems.join("; ")}`, [...new Set(fields)]);
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
