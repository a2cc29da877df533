import { join } from "node:path";
import { type StackContext, use } from "sst/constructs";
import { AgentFixTestEvents } from "../lib/test-events.js";
import { FailurePath } from "./FailurePath.js";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { Sweep } from "./Sweep.js";

/** Directory of the sample events, relative to the project root (where sst runs). */
export const EVENTS_DIRECTORY = "events";

/** The functions' sample events as the console's shareable test events (lib/test-events.ts). */
export function ConsoleTestEvents({ stack }: StackContext): AgentFixTestEvents {
  const { config } = use(Foundation);
  return new AgentFixTestEvents(stack, "Default", {
    config,
    eventsDirectory: join(process.cwd(), EVENTS_DIRECTORY),
    ...(config.paths.launch
      ? { launchFunction: use(LaunchPath).launchFunction, sweepFunction: use(Sweep).sweepFunction }
      : {}),
    ...(config.paths.failure ? { failureFunction: use(FailurePath).failureFunction } : {}),
  });
}
