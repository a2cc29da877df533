import { AsyncLocalStorage } from "node:async_hooks";
import { CALLER_HEADER } from "../server/server.js";

/**
 * Per-invocation context for the handlers' AWS calls. The runtime runs each invocation inside this
 * storage; a middleware added to the handlers' own clients reads it to tag requests with the calling
 * function (calls are counted per function) and to freeze an invocation after its timeout: in Lambda
 * a timed-out invocation stops, so its later AWS calls here never complete.
 */
export interface InvocationScope {
  functionName: string;
  requestId: string;
  frozen: boolean;
  /** AWS calls made so far. */
  calls?: number;
  /**
   * A crash at the invocation's n-th AWS call: the call reaches AWS, its answer never reaches the
   * handler, and the invocation ends as cut off (`cut`).
   */
  crashAtCall?: { call: number; cut: () => void };
}

export const invocationScope = new AsyncLocalStorage<InvocationScope>();

const INSTRUMENTED = Symbol.for("agentfix.sandbox.instrumented");

interface MiddlewareClient {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { request: unknown }) => Promise<unknown>,
      ) => (args: { request: unknown }) => Promise<unknown>,
      options: { step: "build"; name: string; priority?: "high" | "low" },
    ): void;
  };
}

/** Adds the tagging / freezing middleware to an SDK v3 client (once). */
export function instrumentClient(client: object): void {
  const tagged = client as MiddlewareClient & { [INSTRUMENTED]?: boolean };
  if (tagged[INSTRUMENTED]) return;
  tagged[INSTRUMENTED] = true;
  tagged.middlewareStack.add(
    (next) => async (args) => {
      const scope = invocationScope.getStore();
      if (scope?.frozen) return new Promise<never>(() => {});
      if (scope) {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) request.headers[CALLER_HEADER] = scope.functionName;
        scope.calls = (scope.calls ?? 0) + 1;
        if (scope.crashAtCall && scope.calls >= scope.crashAtCall.call) {
          const answer = next(args);
          scope.frozen = true;
          scope.crashAtCall.cut();
          return answer.then(() => new Promise<never>(() => {}));
        }
      }
      return next(args);
    },
    { step: "build", name: "agentfixSandboxScope", priority: "high" },
  );
}
