import { type StackContext, use } from "sst/constructs";
import { AgentFixSweep } from "../lib/paths.js";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";

/** The sweep of instances stuck on the launch hook (lib/paths.ts), in a stack of its own. */
export function Sweep({ stack }: StackContext): AgentFixSweep {
  return new AgentFixSweep(stack, "Default", use(Foundation), use(LaunchPath));
}
