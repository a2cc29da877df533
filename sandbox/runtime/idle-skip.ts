import { AsyncLocalStorage } from "node:async_hooks";
import { clock, getClockScale, setClockScale } from "../../functions/core/common/clock.js";
import type { Sandbox } from "../sandbox.js";
import type { Scheduler } from "../world/scheduler.js";
import { type InvocationScope, invocationScope } from "./instrument.js";

/**
 * Skips the AWS time in which nothing can happen. A morning is mostly waiting: for instances to boot
 * and register, for installs to run, for CodeDeploy's wait for an agent to run out. Whenever no AWS
 * call is on the wire and every handler and the world wait on a timer of the world's scheduler, the
 * clock moves at once to the earliest of those timers. Nothing is skipped that could have happened,
 * so the clock scale can stay slow enough for the handlers' calls and the throttling to be faithful,
 * and a run costs the CPU time of its work rather than the length of its story.
 *
 * For the run, the handlers' own waits (`clock.sleep`) and the SDK's backoff between retries of a
 * throttled call (the client's own strategy decides whether and how long; only the wait moves) wait
 * on timers of the world's scheduler, so that the skip knows when they end. Calls of an invocation
 * the runtime cut off never end; they do not hold the clock back.
 */
export interface IdleSkip {
  stop(): { skippedSeconds: number; skips: number };
}

interface CallInFlight {
  scope: InvocationScope | undefined;
  backingOff: boolean;
}

/**
 * The handlers' shared clients, imported only once a sandbox has set the environment they (and the
 * Powertools singletons they load) read when they are first imported.
 */
async function sharedClients() {
  const clients = await import("../../functions/core/common/clients.js");
  return [
    clients.ssm,
    clients.autoScaling,
    clients.autoScalingLifecycle,
    clients.codeDeploy,
    clients.dynamodb,
    clients.sqs,
  ];
}
/** A skip is worth making only past this many real milliseconds. */
const MIN_SKIP_REAL_MS = 2;

const callsInFlight = new Set<CallInFlight>();
const currentCall = new AsyncLocalStorage<CallInFlight>();
let tracking = false;

type InitializeMiddleware = (
  next: (args: unknown) => Promise<unknown>,
) => (args: unknown) => Promise<unknown>;
interface MiddlewareStackLike {
  add(
    middleware: InitializeMiddleware,
    options: { step: "initialize"; name: string; priority: "high" },
  ): void;
}

/** Tracks every call of the handlers' shared clients, from its first attempt to its last answer. */
async function trackCalls(): Promise<void> {
  if (tracking) return;
  tracking = true;
  for (const client of await sharedClients()) {
    (client.middlewareStack as unknown as MiddlewareStackLike).add(
      (next) => async (args) => {
        const call: CallInFlight = { scope: invocationScope.getStore(), backingOff: false };
        callsInFlight.add(call);
        try {
          return await currentCall.run(call, () => next(args));
        } finally {
          callsInFlight.delete(call);
        }
      },
      { step: "initialize", name: "agentfixBenchCallsInFlight", priority: "high" },
    );
  }
}

function onTheWire(): boolean {
  for (const call of callsInFlight) if (!call.backingOff && !call.scope?.frozen) return true;
  return false;
}

interface RetryStrategyLike {
  refreshRetryTokenForRetry(token: unknown, errorInfo: unknown): Promise<unknown>;
  retryBackoffStrategy?: { computeNextBackoffDelay?: (attempt: number) => number };
}

/** The backoff a retry asked for (real ms), carried from the strategy's computation to its wait. */
const backoffSlot = new AsyncLocalStorage<{ realMs: number }>();

/**
 * The clients' strategy (smithy's StandardRetryStrategy and kin) computes the backoff and waits it out
 * itself; here the computation is kept and the wait moved to a world timer. A strategy of another
 * shape keeps its own wait, during which the clock is simply not skipped.
 */
async function routeRetryBackoff(scheduler: Scheduler): Promise<() => void> {
  const restores: (() => void)[] = [];
  for (const client of await sharedClients()) {
    const config = client.config as unknown as { retryStrategy: () => Promise<RetryStrategyLike> };
    const strategy = await config.retryStrategy();
    const backoff = strategy.retryBackoffStrategy;
    const compute = backoff?.computeNextBackoffDelay;
    if (!backoff || typeof compute !== "function") continue;
    const refresh = strategy.refreshRetryTokenForRetry;
    backoff.computeNextBackoffDelay = (attempt: number) => {
      const realMs = compute.call(backoff, attempt);
      const slot = backoffSlot.getStore();
      if (!slot) return realMs;
      slot.realMs = realMs;
      return 0;
    };
    strategy.refreshRetryTokenForRetry = async (token, errorInfo) => {
      const slot = { realMs: 0 };
      const next = await backoffSlot.run(slot, () => refresh.call(strategy, token, errorInfo));
      const call = currentCall.getStore();
      if (slot.realMs > 0) {
        if (call) call.backingOff = true;
        try {
          await scheduler.sleep(slot.realMs / getClockScale());
        } finally {
          if (call) call.backingOff = false;
        }
      }
      return next;
    };
    restores.push(() => {
      backoff.computeNextBackoffDelay = compute;
      strategy.refreshRetryTokenForRetry = refresh;
    });
  }
  return () => {
    for (const restore of restores) restore();
  };
}

export async function skipIdleTime(sandbox: Sandbox): Promise<IdleSkip> {
  await trackCalls();
  const { scheduler } = sandbox.world;
  const ownSleep = clock.sleep;
  clock.sleep = (ms: number) => scheduler.sleep(ms);
  const restoreRetries = await routeRetryBackoff(scheduler);
  let skippedMs = 0;
  let skips = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    if (!scheduler.isStopped && !onTheWire()) {
      const due = scheduler.nextDueAt();
      const now = clock.now();
      if (due !== undefined && clock.toReal(due - now) > MIN_SKIP_REAL_MS) {
        setClockScale(getClockScale(), due);
        scheduler.rearm();
        skippedMs += due - now;
        skips++;
      }
    }
    timer = setTimeout(check, 1);
  };
  timer = setTimeout(check, 1);
  return {
    stop() {
      clearTimeout(timer);
      clock.sleep = ownSleep;
      restoreRetries();
      return { skippedSeconds: Math.round(skippedMs / 1000), skips };
    },
  };
}
