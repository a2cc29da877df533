import { instanceIdsIn } from "../events/instance-ids.js";
import type { World } from "../world/world.js";

/**
 * An invocation the runtime cut off (`cutOffProbability`: the sandbox freezes it mid-flight, as a
 * crash or an out-of-memory kill would), with the instances whose events or messages it held: the
 * chaos figures measure how long each took to recover (sandbox/scenarios/recovery.ts).
 */
export function recordCutOff(
  world: World,
  functionName: string,
  requestId: string,
  budgetMs: number,
  event: unknown,
): void {
  world.trace.record({
    at: world.now(),
    kind: "lambda.cut-off",
    message: `${functionName} cut off after ${(budgetMs / 1000).toFixed(1)} s`,
    data: { functionName, requestId, instanceIds: instanceIdsIn(event) },
  });
}
