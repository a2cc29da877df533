import { type StackContext, use } from "sst/constructs";
import { AgentFixMonitoring } from "../lib/monitoring.js";
import { FailurePath } from "./FailurePath.js";
import { Foundation } from "./Foundation.js";
import { LaunchPath } from "./LaunchPath.js";
import { Sweep } from "./Sweep.js";

/** Alarms and the dashboard of the paths the stage deploys (lib/monitoring.ts), in a stack of their own. */
export function Monitoring({ stack }: StackContext): AgentFixMonitoring {
  const foundation = use(Foundation);
  const { paths } = foundation.config;
  return new AgentFixMonitoring(stack, "Default", {
    foundation,
    ...(paths.launch ? { launch: use(LaunchPath), sweep: use(Sweep) } : {}),
    ...(paths.failure ? { failure: use(FailurePath) } : {}),
  });
}
