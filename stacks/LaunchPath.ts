import { type StackContext, use } from "sst/constructs";
import { AgentFixLaunchPath } from "../lib/paths.js";
import { Foundation } from "./Foundation.js";

/** The launch path of the stage (lib/paths.ts), in a stack of its own. */
export function LaunchPath({ stack }: StackContext): AgentFixLaunchPath {
  return new AgentFixLaunchPath(stack, "Default", use(Foundation));
}
