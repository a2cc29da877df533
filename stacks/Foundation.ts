import type { StackContext } from "sst/constructs";
import { AgentFixFoundation } from "../lib/foundation.js";
import { stageCode } from "./code.js";
import { useStageConfig } from "./config.js";

/**
 * What every path shares: the stage configuration and its wiring, the lease table and the alarm
 * topic (lib/foundation.ts). The construct's id "Default" keeps every logical id the stack had.
 */
export function Foundation({ app, stack }: StackContext): AgentFixFoundation {
  return new AgentFixFoundation(stack, "Default", { config: useStageConfig(app.stage), code: stageCode() });
}
