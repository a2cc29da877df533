// Preflight, run by CloudFormation while the Foundation stack deploys (a custom resource): Distributor
// must publish the stage's agent package in the Region, and the pinned version of it, or every install
// the stage sends would fail on the instance. `AWSCodeDeployAgentV2` "might not be available in all
// Regions yet". The deploy fails here first, naming the setting to change. The sandbox's deploy runs
// the same check against its own SSM (sandbox/service.ts).
import { DescribeDocumentCommand, SSMClient } from "@aws-sdk/client-ssm";
import { customResourceEvent, respond } from "./core/common/custom-resource.js";

/** Looks a document up; throws SSM's error (InvalidDocument, InvalidDocumentVersion) when it is not there. */
export type DescribeDocument = (name: string, versionName?: string) => Promise<void>;

export interface AgentPackageSetting {
  packageName: string;
  /** The pin, or "" for the latest published version (then only the package is checked). */
  version: string;
  region: string;
}

/** SSM's answers for a document, or a version of it, that the account cannot see in the Region. */
const NOT_PUBLISHED = new Set(["InvalidDocument", "InvalidDocumentVersion"]);

function notPublished(error: unknown): boolean {
  if (!error || typeof error !== "object") return false;
  const { name, code, Code } = error as { name?: string; code?: string; Code?: string };
  return [name, code, Code].some((value) => value !== undefined && NOT_PUBLISHED.has(value));
}

/**
 * What is wrong with the stage's package setting, naming the setting; undefined when Distributor
 * publishes the package (and the pinned version) in the Region. Other errors (access, throttling)
 * are thrown: the deploy fails rather than go ahead unchecked.
 */
export async function agentPackageProblem(
  describe: DescribeDocument,
  setting: AgentPackageSetting,
): Promise<string | undefined> {
  const { packageName, version, region } = setting;
  try {
    await describe(packageName);
  } catch (error) {
    if (!notPublished(error)) throw error;
    return `agent.package: Distributor does not publish ${packageName} in ${region} (AWSCodeDeployAgentV2 might not be available in all Regions yet); choose another agent.package, or deploy the stage to a Region that publishes it`;
  }
  if (!version) return undefined;
  try {
    await describe(packageName, version);
  } catch (error) {
    if (!notPublished(error)) throw error;
    return `agent.version: ${packageName} ${version} is not published in ${region}; pin a version Distributor publishes (aws ssm describe-document --name ${packageName} --version-name <version>), or "latest"`;
  }
  return undefined;
}

let client: SSMClient | undefined;

const ssmDescribe: DescribeDocument = async (name, versionName) => {
  client ??= new SSMClient({ region: process.env.AWS_REGION });
  await client.send(
    new DescribeDocumentCommand({ Name: name, ...(versionName ? { VersionName: versionName } : {}) }),
  );
};

/** Checks on Create and Update; a Delete has nothing to check. Always answers CloudFormation. */
export async function handler(input: unknown): Promise<void> {
  const event = customResourceEvent<{ PackageName?: string; Version?: string }>(
    input,
    "PackageName and Version",
  );
  const packageName = event.ResourceProperties.PackageName ?? "";
  const version = event.ResourceProperties.Version ?? "";
  const physicalId = event.PhysicalResourceId ?? `agent-package-${packageName}-${version || "latest"}`;
  let reason: string | undefined;
  if (event.RequestType !== "Delete") {
    try {
      reason = await agentPackageProblem(ssmDescribe, {
        packageName,
        version,
        region: process.env.AWS_REGION ?? "",
      });
    } catch (error) {
      reason = `agent.package: could not check ${packageName} ${version || "(latest)"} with ssm:DescribeDocument: ${String(error)}`;
    }
  }
  console.log(
    JSON.stringify({ requestType: event.RequestType, packageName, version, reason: reason ?? "ok" }),
  );
  await respond(event, {
    status: reason ? "FAILED" : "SUCCESS",
    reason: reason ?? "Distributor publishes the agent package and version",
    physicalId,
  });
}
