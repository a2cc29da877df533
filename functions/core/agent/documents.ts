// The content of the service's two Command documents (schemaVersion 2.2). The stack creates them per
// stage (names in contract.ts); the functions send only these. Steps for the other platform are
// skipped by their `precondition`; `onFailure` ends the document early: `successAndExit` when the
// agent is already current (nothing to restart), `exit` when a deployment runs on the instance or the
// install fails. Both need SSM Agent 3.0.502 or later
// (https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-command-ssm-plugin-reference.html).
import { AGENT_PACKAGES, AGENT_VERSION_PATTERN, INSTALL_STEPS } from "../contract.js";
import { DEPLOYMENT_GUARD, SKIP_IF_CURRENT, VERIFY_AGENT } from "./scripts.js";

/** Parameters of the install document, as SendCommand takes them. */
export interface InstallParameters {
  packageName: string;
  /** "" installs the latest published version. */
  version: string;
  /** The version the verification accepts ("1.8" accepts 1.8.x); "" accepts any running agent. */
  expectedVersion: string;
}

const SCRIPT_TIMEOUT_SECONDS = "60";
const LINUX = { StringEquals: ["platformType", "Linux"] };
const WINDOWS = { StringEquals: ["platformType", "Windows"] };

const versionParameter = (description: string) => ({
  type: "String",
  default: "",
  description,
  allowedPattern: AGENT_VERSION_PATTERN.source,
});

function shell(name: string, platform: "linux" | "windows", lines: string[], onFailure?: string) {
  return {
    action: platform === "linux" ? "aws:runShellScript" : "aws:runPowerShellScript",
    name,
    precondition: platform === "linux" ? LINUX : WINDOWS,
    inputs: {
      runCommand: lines,
      timeoutSeconds: SCRIPT_TIMEOUT_SECONDS,
      ...(onFailure ? { onFailure } : {}),
    },
  };
}

/** Install the agent unless it is current or deploying, then verify it. */
export function installDocumentContent(stage: string): Record<string, unknown> {
  return {
    schemaVersion: "2.2",
    description: `agentfix (${stage}): installs the CodeDeploy agent with Distributor unless it already runs at the expected version or a deployment runs on the instance, then verifies it.`,
    parameters: {
      packageName: { type: "String", allowedValues: [...AGENT_PACKAGES], description: "Distributor package" },
      version: versionParameter("Version to install; empty installs the latest published version"),
      expectedVersion: versionParameter("Version the agent must run at afterwards; empty accepts any"),
    },
    mainSteps: [
      shell(INSTALL_STEPS.skipIfCurrentLinux, "linux", SKIP_IF_CURRENT.linux, "successAndExit"),
      shell(INSTALL_STEPS.skipIfCurrentWindows, "windows", SKIP_IF_CURRENT.windows, "successAndExit"),
      shell(INSTALL_STEPS.guardLinux, "linux", DEPLOYMENT_GUARD.linux, "exit"),
      shell(INSTALL_STEPS.guardWindows, "windows", DEPLOYMENT_GUARD.windows, "exit"),
      {
        action: "aws:configurePackage",
        name: INSTALL_STEPS.install,
        // "In-place update" is not supported for AWS-published packages.
        inputs: {
          name: "{{ packageName }}",
          action: "Install",
          installationType: "Uninstall and reinstall",
          version: "{{ version }}",
          onFailure: "exit",
        },
      },
      shell(INSTALL_STEPS.verifyLinux, "linux", VERIFY_AGENT.linux),
      shell(INSTALL_STEPS.verifyWindows, "windows", VERIFY_AGENT.windows),
    ],
  };
}

/** Only check the agent: running, and at the expected version. */
export function checkDocumentContent(stage: string): Record<string, unknown> {
  return {
    schemaVersion: "2.2",
    description: `agentfix (${stage}): reports whether the CodeDeploy agent runs and its version; fails unless it runs at the expected version.`,
    parameters: {
      expectedVersion: versionParameter("Version the agent must run at; empty accepts any"),
    },
    mainSteps: [
      shell("checkLinux", "linux", VERIFY_AGENT.linux),
      shell("checkWindows", "windows", VERIFY_AGENT.windows),
    ],
  };
}
