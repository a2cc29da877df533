// The agent work's Systems Manager calls, each batched over the instances it concerns, and how an
// invocation reads in a report.
import {
  type CommandInvocation,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import { ssm } from "../common/clients.js";
import { chunk, collect, paginate } from "../common/concurrency.js";
import { awsErrorName, errorMessage } from "../common/errors.js";
import type { AgentConfig } from "../config.js";
import { installDocumentName, MAX_INSTANCE_IDS_PER_COMMAND } from "../contract.js";
import { pinnedDocumentVersion } from "./settings.js";

/** Delivery timeout of our commands: an instance that cannot receive one in this time fails it. */
export const COMMAND_DELIVERY_TIMEOUT_SECONDS = 600;
/** Invocation statuses of a command still on its way or running. */
export const IN_FLIGHT_STATUSES: ReadonlySet<string> = new Set([
  "Pending",
  "InProgress",
  "Delayed",
  "Cancelling",
]);

/**
 * The platform of each instance that is Online with SSM. Stopped instances are left out of the
 * answer, and ConnectionLost cannot take commands
 * (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html).
 */
export async function describeOnline(instanceIds: readonly string[]): Promise<Map<string, string>> {
  const online = new Map<string, string>();
  for (const ids of chunk(instanceIds, MAX_INSTANCE_IDS_PER_COMMAND)) {
    const rows = await collect(
      paginate((NextToken) =>
        ssm.send(
          new DescribeInstanceInformationCommand({
            Filters: [{ Key: "InstanceIds", Values: [...ids] }],
            MaxResults: MAX_INSTANCE_IDS_PER_COMMAND,
            NextToken,
          }),
        ),
      ),
      (page) => page.InstanceInformationList,
    );
    for (const info of rows)
      if (info.InstanceId && info.PingStatus === "Online")
        online.set(info.InstanceId, info.PlatformType ?? "Linux");
  }
  return online;
}

/**
 * Sends the stage's install document (documents.ts) to up to 50 instances, at the document version
 * whose content is this release's. Returns the command id.
 */
export async function sendInstall(
  config: AgentConfig,
  instanceIds: readonly string[],
  install: { comment: string; expectedVersion: string; allowRestart: boolean },
): Promise<string> {
  const response = await ssm.send(
    new SendCommandCommand({
      DocumentName: installDocumentName(config.STAGE),
      DocumentVersion: await pinnedDocumentVersion(config),
      InstanceIds: [...instanceIds],
      Parameters: {
        packageName: [config.AGENT_PACKAGE],
        version: [config.AGENT_VERSION],
        expectedVersion: [install.expectedVersion],
        allowRestart: [install.allowRestart ? "yes" : "no"],
      },
      Comment: install.comment,
      TimeoutSeconds: COMMAND_DELIVERY_TIMEOUT_SECONDS,
    }),
  );
  return response.Command?.CommandId ?? "";
}

/**
 * `InvalidInstanceId` fails the whole SendCommand when one instance cannot take commands (not yet
 * registered, or terminating). The message names the instances (`Instances [[i-...]] not in a valid
 * state`): returns those (all of them when none is named), or undefined for any other error.
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
 */
export function instancesRefused(error: unknown, instanceIds: readonly string[]): string[] | undefined {
  if (awsErrorName(error) !== "InvalidInstanceId") return undefined;
  const named = new Set(errorMessage(error).match(/i-[0-9a-f]{8,17}/g) ?? []);
  return named.size > 0 ? instanceIds.filter((id) => named.has(id)) : [...instanceIds];
}

/**
 * One command's invocations by instance (all its instances at once). Right after SendCommand the
 * command may not be visible yet (aws/aws-sdk#86): that reads as no invocation.
 */
export async function listInvocations(commandId: string): Promise<Map<string, CommandInvocation>> {
  const found = new Map<string, CommandInvocation>();
  try {
    const invocations = await collect(
      paginate((NextToken) =>
        ssm.send(
          new ListCommandInvocationsCommand({
            CommandId: commandId,
            Details: true,
            MaxResults: 50,
            NextToken,
          }),
        ),
      ),
      (page) => page.CommandInvocations,
    );
    for (const invocation of invocations)
      if (invocation.InstanceId) found.set(invocation.InstanceId, invocation);
  } catch (error) {
    if (awsErrorName(error) !== "InvocationDoesNotExist" && awsErrorName(error) !== "InvalidCommandId")
      throw error;
  }
  return found;
}

/**
 * The newest invocation of the stage's install document on one instance since `since` (AWS-time ms),
 * for an install an invocation may have sent just before it was cut off. Only the stage's own
 * document counts: another team's Distributor installs (AWS-ConfigureAWSPackage) are never followed.
 */
export async function findInstallSince(
  config: AgentConfig,
  instanceId: string,
  since: number,
  now: () => number,
): Promise<{ commandId: string; at: number } | undefined> {
  const answer = await ssm.send(
    new ListCommandInvocationsCommand({
      InstanceId: instanceId,
      Filters: [
        { key: "DocumentName", value: installDocumentName(config.STAGE) },
        { key: "InvokedAfter", value: new Date(since).toISOString() },
      ],
      MaxResults: 50,
    }),
  );
  const newest = (answer.CommandInvocations ?? []).sort((a, b) => requestedAt(b) - requestedAt(a))[0];
  return newest?.CommandId ? { commandId: newest.CommandId, at: requestedAt(newest) || now() } : undefined;
}

/** "command c-1 ended Failed (Execution Timed Out): <last line of output>" */
export function describeInvocation(invocation: CommandInvocation): string {
  const details =
    invocation.StatusDetails && invocation.StatusDetails !== invocation.Status
      ? ` (${invocation.StatusDetails})`
      : "";
  // A multi-step document: the step that failed says why; the steps skipped after it say nothing.
  const failed = invocation.CommandPlugins?.find(
    (plugin) => plugin.Status === "Failed" || plugin.Status === "TimedOut",
  );
  const text = failed ? (failed.Output ?? "") : (commandOutput(invocation) ?? "");
  const output = text
    .trim()
    .split("\n")
    // Not the separator before stderr, nor the agent's note that later steps were skipped.
    .filter((line) => line.trim() && !/^-+ERROR-+$|^Step was found to have onFailure/.test(line.trim()))
    .slice(-1)[0];
  return `command ${invocation.CommandId} ended ${invocation.Status}${details}${output ? `: ${output.slice(0, 200)}` : ""}`;
}

export function commandOutput(invocation: CommandInvocation): string | undefined {
  return invocation.CommandPlugins?.map((plugin) => plugin.Output ?? "").join("\n");
}

/** When the invocation was requested, AWS-time ms (0 when SSM did not say). */
export function requestedAt(invocation: CommandInvocation): number {
  return invocation.RequestedDateTime?.getTime() ?? 0;
}
