import { compareVersions, type Distribution } from "../random.js";
import type { Diagnostics, LifecycleEventName } from "./records.js";

// How a lifecycle event ends on an instance, as CodeDeploy reports it: the agent failures, and the
// scripts of the sandbox's application (a tomcat service) that fail on an old agent or a broken revision.

/** The message CodeDeploy backfills when no agent picked an event up in time (aws/aws-codedeploy-agent#307). */
export const AGENT_NOT_RECEIVING_MESSAGE =
  "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy agent logs on your host and make sure the agent is running and can connect to the CodeDeploy server.";
/** The message of an event that was running when the agent restarted (aws/aws-codedeploy-agent#402). */
export const AGENT_RESTART_MESSAGE = "Failing in-progress lifecycle event after an agent restart";
export const HEALTH_CONSTRAINTS_MESSAGE =
  "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems.";

export const DEFAULT_EVENT_SECONDS: Record<LifecycleEventName, Distribution> = {
  ApplicationStop: { min: 0.5, max: 1.5 },
  DownloadBundle: { min: 2, max: 5 },
  BeforeInstall: { min: 1, max: 3 },
  Install: { min: 2, max: 4 },
  AfterInstall: { min: 1, max: 3 },
  ApplicationStart: { min: 3, max: 8 },
  ValidateService: { min: 2, max: 6 },
};

export interface EventOutcome {
  status: "Succeeded" | "Failed";
  diagnostics: Diagnostics;
}

/** The event fails for want of an agent: none picked it up, or the agent restarted under it. */
export function failWithoutAgent(message: string): EventOutcome {
  return {
    status: "Failed",
    diagnostics: { errorCode: "UnknownError", scriptName: "", message, logTail: "" },
  };
}

/** What the event's scripts answer once an agent ran them to the end. */
export function runScripts(
  eventName: LifecycleEventName,
  context: { agentVersion: string; fixedInAgentVersion: string; revisionBroken: boolean },
): EventOutcome {
  if (
    eventName === "ApplicationStart" &&
    compareVersions(context.agentVersion, context.fixedInAgentVersion) < 0
  ) {
    return {
      status: "Failed",
      diagnostics: {
        errorCode: "ScriptFailed",
        scriptName: "scripts/start_tomcat.sh",
        message:
          "Script at specified location: scripts/start_tomcat.sh run as user root failed with exit code 1",
        logTail:
          '[stderr]Job for tomcat.service failed because the control process exited with error code.\n[stderr]See "systemctl status tomcat.service" and "journalctl -xe" for details.',
      },
    };
  }
  if (eventName === "ValidateService" && context.revisionBroken) {
    return {
      status: "Failed",
      diagnostics: {
        errorCode: "ScriptFailed",
        scriptName: "scripts/validate_service.sh",
        message:
          "Script at specified location: scripts/validate_service.sh run as user root failed with exit code 7",
        logTail: "[stdout]curl: (7) Failed to connect to localhost port 8080 after 0 ms: Connection refused",
      },
    };
  }
  return {
    status: "Succeeded",
    diagnostics: { errorCode: "Success", scriptName: "", message: "Succeeded", logTail: "" },
  };
}
