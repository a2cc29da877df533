import type { z } from "zod";
import { EventValidationError } from "../core/common/errors.js";

/**
 * Parses input with a schema, or throws one `EventValidationError` that names every bad field
 * (`detail.EC2InstanceId: ...; detail.LifecycleActionToken: ...`).
 */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields: string[] = [];
  const problems: string[] = [];
  for (const issue of result.error.issues) {
    // An unknown key is reported on the object that holds it; name the keys themselves.
    const paths =
      issue.code === "unrecognized_keys"
        ? issue.keys.map((key) => [...issue.path, key].join("."))
        : [issue.path.join(".") || "(root)"];
    for (const path of paths) {
      fields.push(path);
      problems.push(`${path}: ${issue.message}`);
    }
  }
  throw new EventValidationError(`Invalid ${what}: ${problems.join("; ")}`, [...new Set(fields)]);
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
