import { clock } from "../../functions/core/common/clock.js";
import { type Distribution, Random } from "../world/random.js";

/**
 * What the server does to traffic before the world sees it: per-operation token buckets (AWS throttles
 * each API separately, with a sustained rate and a burst), injected server errors and added latency.
 * Rates are per AWS second on the shared clock. Keys are `Service.Operation` (`SSM.SendCommand`),
 * `Service.*` or `*`; the most specific key wins, and each operation keeps its own bucket.
 */
export interface RateLimit {
  /** Sustained requests per AWS second. */
  rate: number;
  /** Bucket size: requests allowed at once after a quiet period. */
  burst: number;
}

export interface TrafficOptions {
  rateLimits?: Record<string, RateLimit>;
  /** Probability per call of a 5xx answer (InternalServerError / InternalFailure). */
  errorRates?: Record<string, number>;
  /** AWS seconds added before answering. */
  latencySeconds?: Record<string, Distribution>;
  seed?: number | string;
}

export function lookup<T>(table: Record<string, T> | undefined, operation: string): T | undefined {
  if (!table) return undefined;
  const service = operation.split(".")[0];
  return table[operation] ?? table[`${service}.*`] ?? table["*"];
}

class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(private readonly limit: RateLimit) {
    this.tokens = limit.burst;
    this.updatedAt = clock.now();
  }

  take(): boolean {
    const now = clock.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.limit.rate);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Traffic {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly random: Random;

  constructor(readonly options: TrafficOptions = {}) {
    this.random = new Random(`traffic/${options.seed ?? 1}`);
  }

  /** False when the operation's bucket is empty: the call is throttled. */
  admit(operation: string): boolean {
    const limit = lookup(this.options.rateLimits, operation);
    if (!limit) return true;
    let bucket = this.buckets.get(operation);
    if (!bucket) {
      bucket = new TokenBucket(limit);
      this.buckets.set(operation, bucket);
    }
    return bucket.take();
  }

  injectFault(operation: string): boolean {
    return this.random.chance(lookup(this.options.errorRates, operation) ?? 0);
  }

  latencyMs(operation: string): number {
    const latency = lookup(this.options.latencySeconds, operation);
    return latency === undefined ? 0 : this.random.draw(latency) * 1000;
  }
}

/** Calls per operation, as the benchmarks read them. */
export class ApiCounters {
  calls: Record<string, number> = {};
  throttled: Record<string, number> = {};
  faults: Record<string, number> = {};
  /** Error answers other than throttling and injected faults, by operation and error code. */
  errors: Record<string, number> = {};
  /** Calls per caller (the Lambda function that made them, when the runtime tags its clients). */
  byCaller: Record<string, Record<string, number>> = {};

  count(operation: string, caller: string): void {
    this.calls[operation] = (this.calls[operation] ?? 0) + 1;
    const mine = this.byCaller[caller] ?? {};
    mine[operation] = (mine[operation] ?? 0) + 1;
    this.byCaller[caller] = mine;
  }

  bump(table: Record<string, number>, key: string): void {
    table[key] = (table[key] ?? 0) + 1;
  }

  /** Calls of one service (`SSM`) or of everything, optionally only one caller's. */
  total(service?: string, caller?: string): number {
    const table = caller ? (this.byCaller[caller] ?? {}) : this.calls;
    return Object.entries(table)
      .filter(([operation]) => !service || operation.startsWith(`${service}.`))
      .reduce((sum, [, count]) => sum + count, 0);
  }

  totalThrottled(service?: string): number {
    return Object.entries(this.throttled)
      .filter(([operation]) => !service || operation.startsWith(`${service}.`))
      .reduce((sum, [, count]) => sum + count, 0);
  }

  snapshot() {
    return structuredClone({
      calls: this.calls,
      throttled: this.throttled,
      faults: this.faults,
      errors: this.errors,
      byCaller: this.byCaller,
    });
  }

  reset(): void {
    this.calls = {};
    this.throttled = {};
    this.faults = {};
    this.errors = {};
    this.byCaller = {};
  }
}
