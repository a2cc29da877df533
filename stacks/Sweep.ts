import { type StackContext, use } from "sst/constructs";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { sweepAccess } from "./permissions.js";
import { createServiceFunction } from "./service-function.js";
import { createServiceRule } from "./service-resources.js";
import { wired } from "./wiring.js";

/**
 * Sweep: on a schedule, functions/sweep.ts puts instances stuck in Pending:Wait on our hook back on
 * the launch queue (lifecycle events are best effort and can be lost). Every setting comes from the
 * stage's wiring (stacks/wiring.ts).
 */
export function Sweep({ stack }: StackContext) {
  const { config, wiring, pathResources, leaseTable } = use(Foundation);
  const { queue } = use(LaunchPath);
  const resources = pathResources();
  resources.queues.launch = queue;

  const sweepFunction = createServiceFunction(stack, "sweep", resources, sweepAccess(queue, leaseTable));

  const rule = createServiceRule(stack, wired(wiring.rules.sweep, "launch sweep", config.stage), resources);

  stack.addOutputs({ SweepFunctionName: sweepFunction.functionName });
  return { sweepFunction, rule };
}
