import { type CommandInvocation, ListCommandInvocationsCommand } from "@aws-sdk/client-ssm";
import { parseProbe } from "./agent-scripts.js";
import { ssm } from "./common/clients.js";
import { AwsCallError, errorMessage } from "./common/errors.js";
import { LINUX_VERIFY_DOCUMENT, WINDOWS_VERIFY_DOCUMENT } from "./contract.js";

/** Pages of verification history read at most (50 invocations each). */
const MAX_HISTORY_PAGES = 20;

/**
 * The agent version each instance had when this job first looked at it: the output of the earliest
 * verification command sent under `comment` since `since`. A retried invocation (another deployment
 * was running, or the time budget ran out) finds the agents it upgraded already current; this keeps
 * "the upgrade changed the agent" true across such retries, without state of our own.
 */
export async function findFirstObservedVersions(
  instanceIds: readonly string[],
  since: number,
  comment: string,
): Promise<Map<string, string>> {
  const wanted = new Set(instanceIds);
  const earliest = new Map<string, CommandInvocation>();
  for (const documentName of [LINUX_VERIFY_DOCUMENT, WINDOWS_VERIFY_DOCUMENT]) {
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await listPage(documentName, since, nextToken);
      for (const invocation of page.CommandInvocations ?? []) {
        const id = invocation.InstanceId;
        if (!id || !wanted.has(id) || invocation.Comment !== comment) continue;
        const known = earliest.get(id);
        if (!known || time(invocation) < time(known)) earliest.set(id, invocation);
      }
      nextToken = page.NextToken;
      pages += 1;
    } while (nextToken && pages < MAX_HISTORY_PAGES);
  }
  const versions = new Map<string, string>();
  for (const [instanceId, invocation] of earliest) {
    const output = invocation.CommandPlugins?.map((plugin) => plugin.Output ?? "").join("\n");
    const probe = parseProbe(output);
    if (probe) versions.set(instanceId, probe.version || (probe.state === "missing" ? "none" : "unknown"));
  }
  return versions;
}

async function listPage(documentName: string, since: number, nextToken: string | undefined) {
  try {
    return await ssm.send(
      new ListCommandInvocationsCommand({
        Filters: [
          { key: "DocumentName", value: documentName },
          { key: "InvokedAfter", value: new Date(since).toISOString() },
        ],
        Details: true,
        MaxResults: 50,
        NextToken: nextToken,
      }),
    );
  } catch (error) {
    throw new AwsCallError(`ListCommandInvocations for ${documentName} failed: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

function time(invocation: CommandInvocation): number {
  return invocation.RequestedDateTime?.getTime() ?? 0;
}
