import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Context } from "aws-lambda";
import type { EventBridgeEvent } from "../events/shapes.js";
import { eventTime } from "../events/shapes.js";
import { ACCOUNT_ID } from "../world/service-error.js";
import type { World } from "../world/world.js";
import { recordCutOff } from "./cut-off.js";
import { applyEnvironment } from "./environment.js";
import { type InvocationScope, instrumentClient, invocationScope } from "./instrument.js";

/**
 * Lambda, in process: a function is a handler module imported after its environment is set; each
 * invocation gets a Context whose remaining time follows the configured timeout on the shared clock,
 * runs under the function's concurrency limit, and is cut off at the timeout. Asynchronous invokes
 * retry (by default twice, after one and two minutes) while the event is young enough, and then go
 * to the failure destination, as
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html describes.
 */
export interface FunctionSpec {
  name: string;
  /** Path of the handler module, absolute or relative to the project root. */
  module: string;
  exportName?: string;
  timeoutSeconds: number;
  memoryMb?: number;
  /** Concurrent invocations at most (reserved concurrency); default 10. */
  reservedConcurrency?: number;
  /** Environment variables set before the module is imported (the function's configuration). */
  env?: Record<string, string>;
  /** The function's asynchronous-invoke configuration (PutFunctionEventInvokeConfig). */
  asyncInvoke?: AsyncInvokeOptions;
}

export interface AsyncInvokeOptions {
  /** Retries after a failed invocation, 0-2; Lambda's default is 2. */
  maximumRetryAttempts?: number;
  /** Age after which an event is no longer retried; Lambda's default is 6 hours. */
  maximumEventAgeSeconds?: number;
}

/** An EventBridge schedule that invokes a function (what ListRules and ListTargetsByRule would show). */
export interface ScheduleRecord {
  ruleName: string;
  functionName: string;
  everySeconds: number;
}

/** An SQS event source mapping, with the settings the pollers run with. */
export interface EventSourceMappingRecord {
  functionName: string;
  queueName: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  reportBatchItemFailures: boolean;
  /** Undefined: only the function's concurrency limits the pollers. */
  maximumConcurrency?: number;
}

export interface InvocationResult {
  requestId: string;
  ok: boolean;
  timedOut: boolean;
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
  startedAt: number;
  endedAt: number;
  /**
   * Duration Lambda bills, AWS ms: the handler's run rounded up to the millisecond, the whole budget
   * for an invocation cut off at its timeout. https://aws.amazon.com/lambda/pricing/
   */
  billedDurationMs: number;
  /** Memory configured when the invocation ran, MB (what the duration is billed at). */
  memoryMb: number;
}

/** How an invocation ended, before the runtime adds its times and billing. */
type Outcome = Omit<
  InvocationResult,
  "requestId" | "startedAt" | "endedAt" | "billedDurationMs" | "memoryMb"
>;

/** Memory of a function deployed without a size, MB (the sandbox's choice; Lambda's own default is 128). */
export const DEFAULT_MEMORY_MB = 512;

export interface FunctionStats {
  invocations: number;
  errors: number;
  timeouts: number;
  /** Invocations that waited for a free concurrency slot. */
  throttled: number;
  asyncRetries: number;
  /** Async events that exhausted their retries (sent to the failure destination). */
  failedEvents: number;
}

export interface FailureRecord {
  version: "1.0";
  timestamp: string;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: string;
    approximateInvokeCount: number;
  };
  requestPayload: unknown;
  responseContext: { statusCode: number; executedVersion: string; functionError: string };
  responsePayload: { errorType: string; errorMessage: string };
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;

const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));
let generation = 0;

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly limit: number) {}

  get busy(): boolean {
    return this.active >= this.limit;
  }

  async acquire(): Promise<boolean> {
    if (this.active < this.limit) {
      this.active++;
      return false;
    }
    await new Promise<void>((wake) => this.waiting.push(wake));
    this.active++;
    return true;
  }

  release(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}

export class LambdaFunction {
  readonly arn: string;
  readonly stats: FunctionStats = {
    invocations: 0,
    errors: 0,
    timeouts: 0,
    throttled: 0,
    asyncRetries: 0,
    failedEvents: 0,
  };
  readonly failureDestination: FailureRecord[] = [];
  readonly invocations: InvocationResult[] = [];
  readonly concurrency: Semaphore;
  /** Invocations running now. */
  inFlight = 0;
  /** Asynchronous events accepted and not yet finished (waiting, running or between retries). */
  pendingEvents = 0;

  constructor(
    readonly spec: FunctionSpec,
    readonly handler: Handler,
    region: string,
  ) {
    this.arn = `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${spec.name}`;
    this.concurrency = new Semaphore(spec.reservedConcurrency ?? 10);
  }
}

export interface RuntimeFaults {
  /**
   * Probability that an invocation is cut off at a random moment of its time budget, as a timeout
   * (or a crashed container) would: it ends as timed out and its later AWS calls never complete.
   */
  cutOffProbability?: number;
}

/** A crash drawn for an invocation comes at one of its first this many AWS calls. */
const CRASH_CALLS_MAX = 30;

export class LambdaRuntime {
  readonly functions = new Map<string, LambdaFunction>();
  readonly schedules: ScheduleRecord[] = [];
  readonly eventSourceMappings: EventSourceMappingRecord[] = [];
  private readonly stoppers: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly world: World,
    private readonly faults: RuntimeFaults = {},
  ) {}

  /** Imports the handler module afresh with the function's environment (a cold start). */
  async deploy(spec: FunctionSpec): Promise<LambdaFunction> {
    applyEnvironment(spec.env ?? {});
    const path = isAbsolute(spec.module) ? spec.module : resolve(PROJECT_ROOT, spec.module);
    generation++;
    const module = (await import(`${pathToFileURL(path).href}?sandbox=${generation}`)) as Record<
      string,
      unknown
    >;
    const handler = module[spec.exportName ?? "handler"];
    if (typeof handler !== "function")
      throw new TypeError(`${spec.module} exports no function ${spec.exportName ?? "handler"}`);
    await instrumentSharedClients();
    const fn = new LambdaFunction(spec, handler as Handler, this.world.region);
    this.functions.set(spec.name, fn);
    return fn;
  }

  /** A synchronous (RequestResponse) invoke. */
  async invoke(fn: LambdaFunction, event: unknown): Promise<InvocationResult> {
    const waited = await fn.concurrency.acquire();
    if (waited) fn.stats.throttled++;
    fn.inFlight++;
    try {
      return await this.run(fn, event);
    } finally {
      fn.inFlight--;
      fn.concurrency.release();
    }
  }

  private async run(fn: LambdaFunction, event: unknown): Promise<InvocationResult> {
    const requestId = this.world.rng.fork(`request:${fn.spec.name}:${fn.stats.invocations}`).uuid();
    fn.stats.invocations++;
    const startedAt = this.world.now();
    const deadline = startedAt + fn.spec.timeoutSeconds * 1000;
    const scope: InvocationScope = { functionName: fn.spec.name, requestId, frozen: false };
    const context = this.context(fn, requestId, deadline);
    const faults = this.world.rng.fork(`cut-off:${requestId}`);
    const cutOff = faults.chance(this.faults.cutOffProbability ?? 0);
    // A crash (an out-of-memory kill, a lost container) comes at a random moment of the invocation:
    // at one of its first AWS calls (that call reaches AWS, its answer is lost), or, for an invocation
    // that makes fewer calls, at a random moment of its time budget.
    const budgetMs = cutOff
      ? faults.draw({ min: 1, max: fn.spec.timeoutSeconds }) * 1000
      : fn.spec.timeoutSeconds * 1000;
    const crashAtCall = cutOff ? Math.ceil(faults.draw({ min: 0, max: CRASH_CALLS_MAX })) : undefined;
    let crashed = false;
    const outcome = await new Promise<Outcome>((settle) => {
      const cut = () => {
        scope.frozen = true;
        settle({
          ok: false,
          timedOut: true,
          error: {
            errorType: "Sandbox.Timedout",
            errorMessage: `Task timed out after ${fn.spec.timeoutSeconds.toFixed(2)} seconds`,
          },
        });
      };
      const timer = this.world.scheduler.after(budgetMs, cut);
      if (crashAtCall)
        scope.crashAtCall = {
          call: crashAtCall,
          cut: () => {
            crashed = true;
            timer.cancel();
            cut();
          },
        };
      invocationScope.run(scope, () => {
        Promise.resolve()
          .then(() => fn.handler(event, context))
          .then(
            (result) => {
              timer.cancel();
              settle({ ok: true, timedOut: false, result });
            },
            (error: unknown) => {
              timer.cancel();
              const failure = error instanceof Error ? error : new Error(String(error));
              settle({
                ok: false,
                timedOut: false,
                error: { errorType: failure.name, errorMessage: failure.message },
              });
            },
          );
      });
    });
    if (cutOff && outcome.timedOut) recordCutOff(this.world, fn.spec.name, requestId, budgetMs, event);
    if (outcome.timedOut) fn.stats.timeouts++;
    else if (!outcome.ok) fn.stats.errors++;
    // A timer on the compressed clock may fire a real millisecond early: a timed-out invocation still
    // ran (and is billed) for its whole budget.
    const endedAt =
      outcome.timedOut && !crashed ? Math.max(this.world.now(), startedAt + budgetMs) : this.world.now();
    const result: InvocationResult = {
      requestId,
      startedAt,
      endedAt,
      billedDurationMs: Math.ceil(endedAt - startedAt),
      memoryMb: fn.spec.memoryMb ?? DEFAULT_MEMORY_MB,
      ...outcome,
    };
    fn.invocations.push(result);
    this.world.trace.record({
      at: result.endedAt,
      kind: outcome.ok ? "lambda.invoked" : "lambda.failed",
      message: `${fn.spec.name} ${outcome.ok ? "returned" : outcome.timedOut ? "timed out" : `failed: ${outcome.error?.errorType}: ${outcome.error?.errorMessage}`} (${((result.endedAt - startedAt) / 1000).toFixed(1)} s)`,
      data: { functionName: fn.spec.name, requestId, result: outcome.result, error: outcome.error },
    });
    return result;
  }

  private context(fn: LambdaFunction, requestId: string, deadline: number): Context {
    const now = () => this.world.now();
    const day = new Date(now()).toISOString().slice(0, 10).replaceAll("-", "/");
    return {
      callbackWaitsForEmptyEventLoop: true,
      functionName: fn.spec.name,
      functionVersion: "$LATEST",
      invokedFunctionArn: fn.arn,
      memoryLimitInMB: String(fn.spec.memoryMb ?? DEFAULT_MEMORY_MB),
      awsRequestId: requestId,
      logGroupName: `/aws/lambda/${fn.spec.name}`,
      logStreamName: `${day}/[$LATEST]${requestId.replaceAll("-", "")}`,
      getRemainingTimeInMillis: () => Math.max(0, Math.floor(deadline - now())),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
  }

  /**
   * An asynchronous (Event) invoke: Lambda queues the event, retries a failed invocation (one
   * minute, then two minutes later) as the function's asynchronous-invoke configuration allows, or
   * `options` for this event, and then sends a record to the failure destination.
   */
  invokeAsync(fn: LambdaFunction, event: unknown, options: AsyncInvokeOptions = {}): void {
    const maxRetries = options.maximumRetryAttempts ?? fn.spec.asyncInvoke?.maximumRetryAttempts ?? 2;
    const maxAgeMs =
      (options.maximumEventAgeSeconds ?? fn.spec.asyncInvoke?.maximumEventAgeSeconds ?? 6 * 3600) * 1000;
    const acceptedAt = this.world.now();
    fn.pendingEvents++;
    const giveUp = (result: InvocationResult, count: number, condition: string) => {
      fn.pendingEvents--;
      fn.stats.failedEvents++;
      fn.failureDestination.push({
        version: "1.0",
        timestamp: new Date(this.world.now()).toISOString(),
        requestContext: {
          requestId: result.requestId,
          functionArn: `${fn.arn}:$LATEST`,
          condition,
          approximateInvokeCount: count,
        },
        requestPayload: event,
        responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
        responsePayload: result.error ?? { errorType: "Unknown", errorMessage: "" },
      });
      this.world.trace.record({
        at: this.world.now(),
        kind: "lambda.failure-destination",
        message: `${fn.spec.name}: event sent to the failure destination after ${count} attempts`,
        data: { functionName: fn.spec.name, error: result.error },
      });
    };
    const attempt = async (count: number, previous?: InvocationResult): Promise<void> => {
      if (this.stopped) return;
      if (previous && this.world.now() - acceptedAt > maxAgeMs) {
        giveUp(previous, count - 1, "EventAgeExceeded");
        return;
      }
      const result = await this.invoke(fn, event);
      if (result.ok) {
        fn.pendingEvents--;
        return;
      }
      if (count <= maxRetries) {
        fn.stats.asyncRetries++;
        this.world.scheduler.after(count * 60_000, () => attempt(count + 1, result));
        return;
      }
      giveUp(result, count, "RetriesExhausted");
    };
    // Lambda's internal queue hands the event over shortly after it was accepted.
    this.world.scheduler.after(
      this.world.rng.fork(`async:${fn.spec.name}:${fn.stats.invocations}`).draw({ min: 0.1, max: 1 }) * 1000,
      () => attempt(1),
    );
  }

  /** An EventBridge schedule (rate expression) invoking the function asynchronously. */
  schedule(fn: LambdaFunction, everySeconds: number, ruleName = `${fn.spec.name}-schedule`): void {
    this.schedules.push({ ruleName, functionName: fn.spec.name, everySeconds });
    const timer = this.world.scheduler.every(everySeconds * 1000, () => {
      const event: EventBridgeEvent = {
        version: "0",
        id: this.world.rng.fork(`schedule:${ruleName}:${this.world.now()}`).uuid(),
        "detail-type": "Scheduled Event",
        source: "aws.events",
        account: ACCOUNT_ID,
        time: eventTime(this.world.now()),
        region: this.world.region,
        resources: [`arn:aws:events:${this.world.region}:${ACCOUNT_ID}:rule/${ruleName}`],
        detail: {},
      };
      this.invokeAsync(fn, event);
    });
    this.stoppers.push(() => timer.cancel());
  }

  onStop(stopper: () => void): void {
    this.stoppers.push(stopper);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.stopped = true;
    for (const stopper of this.stoppers) stopper();
  }
}

/** Tags and freezes the calls of the handlers' shared clients (functions/core/common/clients.ts). */
async function instrumentSharedClients(): Promise<void> {
  const clients = (await import("../../functions/core/common/clients.js")) as Record<string, unknown>;
  for (const client of Object.values(clients)) {
    if (client && typeof client === "object" && "middlewareStack" in client) instrumentClient(client);
  }
}
