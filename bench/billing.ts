import { round } from "./harness.js";

/**
 * What Lambda bills for a function's compute: GB-seconds, the sum over its invocations of the billed
 * duration times the configured memory (https://aws.amazon.com/lambda/pricing/). Durations are AWS
 * time from the sandbox runtime (sandbox/runtime/lambda.ts), so compressing the clock changes none of
 * them. Requests and the init phase of cold starts are left out: the first is a count the report
 * already gives, the second is the same few hundred milliseconds whatever the completion mode.
 */
export interface BilledInvocation {
  billedDurationMs: number;
  memoryMb: number;
}

const MB_PER_GB = 1024;

/** GB-seconds of a list of invocations. */
export function gbSeconds(invocations: readonly BilledInvocation[]): number {
  let total = 0;
  for (const invocation of invocations)
    total += (invocation.billedDurationMs / 1000) * (invocation.memoryMb / MB_PER_GB);
  return total;
}

/** GB-seconds per 1,000 launched instances, one decimal; 0 when nothing launched. */
export function gbSecondsPer1000(invocations: readonly BilledInvocation[], launched: number): number {
  if (launched <= 0) return 0;
  return round((gbSeconds(invocations) / launched) * 1000, 1);
}
