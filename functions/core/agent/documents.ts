// The content of the stage's install document (schemaVersion 2.2). The stack creates it per stage
// (name in contract.ts); the functions send only it. Steps for the other platform are skipped by their
// `precondition`; `onFailure` ends the document early: `successAndExit` when the agent already runs at
// an acceptable version (nothing to restart), `exit` when the install would restart an agent that may
// be busy. The install step has no `onFailure`: the verification after it runs either way, since
// Distributor fails a same-version install and the agent may well be in place. Needs SSM Agent 3.0.502
// or later (https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-command-ssm-plugin-reference.html).
import { AGENT_PACKAGES, AGENT_VERSION_PATTERN, INSTALL_STEPS } from "../contract.js";
import { DEPLOYMENT_GUARD, SKIP_IF_CURRENT, VERIFY_AGENT } from "./scripts.js";

/** Our scripts run in seconds; the verification waits up to a minute for the service to start. */
const SCRIPT_TIMEOUT_SECONDS = "120";

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
    precondition: { StringEquals: ["platformType", platform === "linux" ? "Linux" : "Windows"] },
    inputs: {
      runCommand: lines,
      timeoutSeconds: SCRIPT_TIMEOUT_SECONDS,
      ...(onFailure ? { onFailure } : {}),
    },
  };
}

/** Install the agent unless it is current or busy, then verify it. */
export function installDocumentContent(stage: string): Record<string, unknown> {
  return {
    schemaVersion: "2.2",
    description: `agentfix (${stage}): installs the CodeDeploy agent with Distributor unless it already runs at the expected version or restarting it could fail a deployment, then verifies it.`,
    parameters: {
      packageName: { type: "String", allowedValues: [...AGENT_PACKAGES], description: "Distributor package" },
      version: versionParameter("Version to install; empty installs the latest published version"),
      expectedVersion: versionParameter(
        "Version the agent must run at afterwards, or newer; empty accepts any",
      ),
      allowRestart: {
        type: "String",
        allowedValues: ["yes", "no"],
        default: "no",
        description:
          "yes: an older agent that runs may be restarted (no deployment is in flight on the instance)",
      },
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
        },
      },
      shell(INSTALL_STEPS.verifyLinux, "linux", VERIFY_AGENT.linux),
      shell(INSTALL_STEPS.verifyWindows, "windows", VERIFY_AGENT.windows),
    ],
  };
}
