// What "the latest version" of the agent package is right now. A stage that takes the latest must
// not accept whatever agent happens to run (an AMI's 1.6.0 would count as verified): the newest
// published version comes from the package's Distributor document (DescribeDocument answers the
// default version's VersionName, https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeDocument.html),
// and the newest version an install of "latest" put in place is remembered too. When neither is
// known, any running agent is accepted and the report says so.
import { DescribeDocumentCommand } from "@aws-sdk/client-ssm";
import { ssm } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { awsErrorName, errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import { compareVersions, normaliseVersion } from "./scripts.js";
import type { AgentSettings } from "./types.js";

/** Packages gain versions a few times a year: an hour of caching per container is plenty. */
const PUBLISHED_CACHE_MS = 3600_000;
/** A failed lookup (throttled, not allowed) is tried again sooner. */
const FAILED_LOOKUP_CACHE_MS = 300_000;

const published = new Map<string, { at: number; version: string | undefined }>();
const installed = new Map<string, string>();

/** The version the agent must run at: the pinned one, else the newest known, else "" (any). */
export async function expectedVersion(settings: AgentSettings): Promise<string> {
  if (settings.agentVersion) return settings.agentVersion;
  return (await newestKnownVersion(settings.agentPackage)) ?? "";
}

/** Remembers the version an install of "latest" put in place (its verification printed it). */
export function noteLatestInstalled(agentPackage: string, version: string | undefined): void {
  if (!version) return;
  const known = installed.get(agentPackage);
  if (!known || compareVersions(version, known) > 0) installed.set(agentPackage, version);
}

export async function newestKnownVersion(agentPackage: string): Promise<string | undefined> {
  const candidates = [await publishedVersion(agentPackage), installed.get(agentPackage)].filter(
    (version): version is string => Boolean(version),
  );
  return candidates.sort(compareVersions).at(-1);
}

async function publishedVersion(agentPackage: string): Promise<string | undefined> {
  const cached = published.get(agentPackage);
  const maxAge = cached?.version ? PUBLISHED_CACHE_MS : FAILED_LOOKUP_CACHE_MS;
  if (cached && clock.now() - cached.at < maxAge) return cached.version;
  let version: string | undefined;
  try {
    const answer = await ssm.send(new DescribeDocumentCommand({ Name: agentPackage }));
    version = normaliseVersion(answer.Document?.VersionName ?? "") || undefined;
  } catch (error) {
    // Not fatal: the last install's result still tells the newest version.
    logger.warn("Could not read the package's published versions", {
      agentPackage,
      errorName: awsErrorName(error),
      error: errorMessage(error),
    });
  }
  published.set(agentPackage, { at: clock.now(), version });
  return version;
}

/** Forgets what is cached (tests). */
export function clearVersionCache(): void {
  published.clear();
  installed.clear();
}
