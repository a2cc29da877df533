// The agent version each instance had when a job first looked at it, read back from the output of
// that job's verification commands in SSM's command history (no state of our own).
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import { ListCommandInvocationsCommand } from "@aws-sdk/client-ssm";
import { ssm } from "../common/clients.js";
import { paginate } from "../common/concurrency.js";
import { callAws } from "../common/errors.js";
import { parseProbe } from "./scripts.js";
import { commandOutput, requestedAt } from "./ssm-commands.js";
import { versionBefore } from "./verdicts.js";

/** Pages of verification history read at most (50 invocations each). */
const MAX_HISTORY_PAGES = 20;

/**
 * The output of the earliest check sent under `comment` since `since`, per instance.
 * A retried invocation (another deployment was running, or the time budget ran out) finds the agents
 * it upgraded already current; this keeps "the upgrade changed the agent" true across such retries.
 */
export async function findFirstObservedVersions(
  checkDocument: string,
  instanceIds: readonly string[],
  since: number,
  comment: string,
): Promise<Map<string, string>> {
  const wanted = new Set(instanceIds);
  const earliest = new Map<string, CommandInvocation>();
  await callAws("ListCommandInvocations", checkDocument, async () => {
    const pages = paginate(
      (NextToken) =>
        ssm.send(
          new ListCommandInvocationsCommand({
            Filters: [
              { key: "DocumentName", value: checkDocument },
              { key: "InvokedAfter", value: new Date(since).toISOString() },
            ],
            Details: true,
            MaxResults: 50,
            NextToken,
          }),
        ),
      MAX_HISTORY_PAGES,
    );
    for await (const page of pages) {
      for (const invocation of page.CommandInvocations ?? []) {
        const id = invocation.InstanceId;
        if (!id || !wanted.has(id) || invocation.Comment !== comment) continue;
        const known = earliest.get(id);
        if (!known || requestedAt(invocation) < requestedAt(known)) earliest.set(id, invocation);
      }
    }
  });
  const versions = new Map<string, string>();
  for (const [instanceId, invocation] of earliest) {
    const probe = parseProbe(commandOutput(invocation));
    if (probe) versions.set(instanceId, versionBefore(probe));
  }
  return versions;
}
