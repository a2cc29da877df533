// The version the agent must run at (the pin, else the newest Distributor publishes; newer is verified
// too, verified.ts, so on the day AWS publishes an agent no instance that gets it fails for being ahead
// of what this container last read), and the version of the stage's install document of this release.
import { DescribeDocumentCommand, GetDocumentCommand } from "@aws-sdk/client-ssm";
import { ssm } from "../common/clients.js";
import { clock } from "../common/clock.js";
import { awsErrorName, errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import type { AgentConfig } from "../config.js";
import { installDocumentName } from "../contract.js";
import { installDocumentContent } from "./documents.js";
import { normaliseVersion } from "./verified.js";

/** Packages gain versions a few times a year; ten minutes of caching per container is plenty. */
const PUBLISHED_CACHE_MS = 600_000;
/** A failed lookup (throttled, not allowed) is tried again sooner. */
const FAILED_LOOKUP_CACHE_MS = 60_000;
const published = new Map<string, { at: number; version: string | undefined }>();

/**
 * The version the agent must run at, or newer: the pinned one, else the newest the package's
 * Distributor document publishes (DescribeDocument answers the default version's VersionName,
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeDocument.html), else ""
 * (any running agent; the install of "latest" then always runs).
 */
export async function expectedVersion(config: AgentConfig): Promise<string> {
  if (config.AGENT_VERSION) return config.AGENT_VERSION;
  const cached = published.get(config.AGENT_PACKAGE);
  const maxAge = cached?.version ? PUBLISHED_CACHE_MS : FAILED_LOOKUP_CACHE_MS;
  if (cached && clock.now() - cached.at < maxAge) return cached.version ?? "";
  let version: string | undefined;
  try {
    const answer = await ssm.send(new DescribeDocumentCommand({ Name: config.AGENT_PACKAGE }));
    version = normaliseVersion(answer.Document?.VersionName ?? "") || undefined;
  } catch (error) {
    logger.warn("Could not read the package's published version; any running agent is accepted", {
      agentPackage: config.AGENT_PACKAGE,
      errorName: awsErrorName(error),
      error: errorMessage(error),
    });
  }
  published.set(config.AGENT_PACKAGE, { at: clock.now(), version });
  return version ?? "";
}

/** The stage's install document as stored differs from this release's: nothing is sent with it. */
export class DocumentChangedError extends Error {
  override name = "DocumentChangedError";
}

const pinned = new Map<string, string>();

/**
 * The version of the stage's install document whose content is exactly this release's: every
 * SendCommand names it, so whoever may update the document cannot change what runs as root through
 * this function. The default version is looked at first, then the latest (a stack update in progress).
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html (DocumentVersion)
 */
export async function pinnedDocumentVersion(config: AgentConfig): Promise<string> {
  const document = installDocumentName(config.STAGE);
  const known = pinned.get(document);
  if (known) return known;
  const ours = installDocumentContent(config.STAGE);
  const seen: string[] = [];
  for (const version of ["$DEFAULT", "$LATEST"]) {
    const answer = await ssm.send(new GetDocumentCommand({ Name: document, DocumentVersion: version }));
    const number = answer.DocumentVersion ?? "";
    if (seen.includes(number)) continue;
    seen.push(number);
    if (sameContent(answer.Content, ours)) {
      pinned.set(document, number);
      return number;
    }
  }
  throw new DocumentChangedError(
    `${document} (versions ${seen.join(", ")}) does not hold this release's install document: nothing is sent until the stack is deployed again`,
  );
}

function sameContent(stored: string | undefined, ours: unknown): boolean {
  try {
    return JSON.stringify(JSON.parse(stored ?? "")) === JSON.stringify(ours);
  } catch {
    return false;
  }
}

/** Forgets what is cached (tests). */
export function clearVersionCache(): void {
  published.clear();
  pinned.clear();
}
