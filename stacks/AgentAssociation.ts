import { type StackContext, use } from "sst/constructs";
import { AgentFixAssociation } from "../lib/paths.js";
import { Foundation } from "./Foundation.js";

/** The State Manager association of the stage (lib/paths.ts), in a stack of its own. */
export function AgentAssociation({ stack }: StackContext): AgentFixAssociation {
  return new AgentFixAssociation(stack, "Default", use(Foundation));
}
