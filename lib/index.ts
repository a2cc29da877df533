// The package root: `import { AgentFix } from "agentfix"`.

export { StageConfigError } from "../stacks/config.js";
export { AgentFix, type AgentFixOptions, prebuiltCode } from "./agentfix.js";
export { AgentFixFoundation } from "./foundation.js";
export { AgentFixMonitoring } from "./monitoring.js";
export { AgentFixAssociation, AgentFixFailurePath, AgentFixLaunchPath, AgentFixSweep } from "./paths.js";
export { type AgentFixProps, agentFixConfig, configInput, DEFAULT_CONSTRUCT_STAGE } from "./props.js";
export { AgentFixTestEvents } from "./test-events.js";
