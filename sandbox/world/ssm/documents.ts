import {
  DISTRIBUTOR_DOCUMENT,
  RUN_POWERSHELL_SCRIPT_DOCUMENT,
  RUN_SHELL_SCRIPT_DOCUMENT,
  VERIFY_MARKER,
} from "../../../functions/core/contract.js";
import { AwsServiceError } from "../service-error.js";
import type { Command, Invocation } from "./records.js";

// The AWS-owned Command documents Run Command runs here, with the parameters each one takes, the
// plugin its invocation reports, and what kind of work an invocation of it is. Documents created in
// the account are command-documents.ts's.

export const DOCUMENTS: readonly string[] = [
  DISTRIBUTOR_DOCUMENT,
  RUN_SHELL_SCRIPT_DOCUMENT,
  RUN_POWERSHELL_SCRIPT_DOCUMENT,
];

export function pluginNameOf(documentName: string): string {
  if (documentName === DISTRIBUTOR_DOCUMENT) return "configurePackage";
  if (documentName === RUN_POWERSHELL_SCRIPT_DOCUMENT) return "aws:runPowerShellScript";
  return "aws:runShellScript";
}

/** An install or uninstall of a Distributor package, the service's verification, or another script. */
export function classifyCommand(command: Command): Invocation["kind"] {
  const firstLine = (command.parameters.commands ?? []).join("\n").split("\n")[0]?.trim();
  if (command.documentName === DISTRIBUTOR_DOCUMENT)
    return command.parameters.action?.[0] === "Install" ? "install" : "other";
  return firstLine === VERIFY_MARKER ? "verify" : "script";
}

/** Refuses the parameters the document does not define or accept, with SSM's InvalidParameters. */
export function validateParameters(documentName: string, parameters: Record<string, string[]>): void {
  for (const [name, value] of Object.entries(parameters)) {
    if (!Array.isArray(value))
      throw new AwsServiceError("InvalidParameters", `Parameter "${name}" must be a list of strings.`);
  }
  const allowed =
    documentName === DISTRIBUTOR_DOCUMENT
      ? ["action", "installationType", "name", "version", "additionalArguments"]
      : ["commands", "workingDirectory", "executionTimeout"];
  for (const name of Object.keys(parameters)) {
    if (!allowed.includes(name)) {
      throw new AwsServiceError(
        "InvalidParameters",
        `Parameter "${name}" is not defined in document ${documentName}.`,
      );
    }
  }
  if (documentName === DISTRIBUTOR_DOCUMENT) validatePackageParameters(parameters);
  else if (!parameters.commands || parameters.commands.length === 0) {
    throw new AwsServiceError("InvalidParameters", 'Parameter "commands" is required.');
  }
}

function validatePackageParameters(parameters: Record<string, string[]>): void {
  const action = parameters.action?.[0];
  if (action !== "Install" && action !== "Uninstall") {
    throw new AwsServiceError("InvalidParameters", 'Parameter "action" must be one of: Install, Uninstall.');
  }
  const name = parameters.name?.[0] ?? "";
  if (!/^[a-zA-Z0-9/:.\-_]{1,128}$/.test(name)) {
    throw new AwsServiceError("InvalidParameters", `Parameter "name" has an invalid value "${name}".`);
  }
  const installationType = parameters.installationType?.[0] ?? "Uninstall and reinstall";
  if (installationType !== "Uninstall and reinstall" && installationType !== "In-place update") {
    throw new AwsServiceError(
      "InvalidParameters",
      'Parameter "installationType" must be one of: Uninstall and reinstall, In-place update.',
    );
  }
  const additional = parameters.additionalArguments?.[0] ?? "{}";
  try {
    const parsed: unknown = JSON.parse(additional);
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new TypeError("not an object");
  } catch {
    throw new AwsServiceError(
      "InvalidParameters",
      'Parameter "additionalArguments" must be a JSON object of strings.',
    );
  }
}
