import { type StackContext, use } from "sst/constructs";
import { AgentFixFailurePath } from "../lib/paths.js";
import { Foundation } from "./Foundation.js";

/** The failure path of the stage (lib/paths.ts), in a stack of its own. */
export function FailurePath({ stack }: StackContext): AgentFixFailurePath {
  return new AgentFixFailurePath(stack, "Default", use(Foundation));
}
