// The scripts of the service's own SSM documents and the parsing of what they print. Each script
// prints one line of `AGENTFIX_...=value` pairs that the functions read back from the command output:
//   skip-if-current   AGENTFIX_BEFORE_STATUS=<running|stopped|missing> AGENTFIX_BEFORE_VERSION=<v>
//                     [AGENTFIX_ALREADY_CURRENT=<v>: the agent already runs at the expected version]
//   deployment-guard  AGENTFIX_DEPLOYMENT_IN_PROGRESS=<none|deployment id>
//   verify-agent      AGENTFIX_AGENT_STATUS=<running|stopped|missing> AGENTFIX_AGENT_VERSION=<v>
// A `Success` from Distributor does not prove the agent runs (Ruby breakage on new distributions,
// aws/aws-codedeploy-agent#321 and #337), hence the verification after every install.
// `{{ expectedVersion }}` is a document parameter restricted to digits and dots.
import { DEPLOYMENT_GUARD_MARKER, SKIP_IF_CURRENT_MARKER, VERIFY_MARKER } from "../contract.js";

// Agent 1.x records its version in /opt/codedeploy-agent/.version as `agent_version: OFFICIAL_1.8.1-...`;
// agent 2.x answers `codedeploy-agent --version`
// (https://docs.aws.amazon.com/codedeploy/latest/userguide/codedeploy-agent-operations-version.html).
const LINUX_PROBE = [
  "status=missing; version=",
  "if [ -x /opt/codedeploy-agent/bin/codedeploy-agent ] || [ -f /opt/codedeploy-agent/.version ]; then status=stopped; fi",
  "if systemctl is-active --quiet codedeploy-agent 2>/dev/null || service codedeploy-agent status >/dev/null 2>&1; then status=running; fi",
  "if [ -f /opt/codedeploy-agent/.version ]; then version=$(sed -n 's/^agent_version: *//p' /opt/codedeploy-agent/.version | head -n 1); fi",
  'if [ -z "$version" ] && [ -x /opt/codedeploy-agent/bin/codedeploy-agent ]; then version=$(/opt/codedeploy-agent/bin/codedeploy-agent --version 2>/dev/null | head -n 1); fi',
  "short=$(printf '%s' \"$version\" | grep -oE '[0-9]+\\.[0-9]+(\\.[0-9]+)?' | head -n 1)",
  "expected='{{ expectedVersion }}'",
  // "1.8" accepts 1.8.x; an empty expected version accepts any version.
  'current=no; if [ "$status" = running ]; then case "$short." in "$expected".*) current=yes;; esac; [ -z "$expected" ] && current=yes; fi',
];

const WINDOWS_PROBE = [
  "$status = 'missing'; $version = ''",
  "$service = Get-Service -Name codedeployagent -ErrorAction SilentlyContinue",
  "if ($service) { $status = if ($service.Status -eq 'Running') { 'running' } else { 'stopped' } }",
  "$file = 'C:\\ProgramData\\Amazon\\CodeDeploy\\.version'",
  "if (Test-Path $file) { $version = ((Get-Content $file -TotalCount 1) -replace '^agent_version:\\s*', '') }",
  "$short = if ($version -match '\\d+\\.\\d+(\\.\\d+)?') { $Matches[0] } else { '' }",
  "$expected = '{{ expectedVersion }}'",
  "$current = ($status -eq 'running') -and (($expected -eq '') -or (\"$short.\".StartsWith(\"$expected.\")))",
];

/** Ends the document with Success (onFailure: successAndExit) when the running agent is already current. */
export const SKIP_IF_CURRENT = {
  linux: [
    SKIP_IF_CURRENT_MARKER,
    ...LINUX_PROBE,
    'echo "AGENTFIX_BEFORE_STATUS=$status AGENTFIX_BEFORE_VERSION=$version"',
    // Only a known expected version can make a running agent current: "latest" with no known newest
    // version always installs.
    'if [ -n "$expected" ] && [ "$current" = yes ]; then echo "AGENTFIX_ALREADY_CURRENT=$short"; exit 1; fi',
  ],
  windows: [
    SKIP_IF_CURRENT_MARKER,
    ...WINDOWS_PROBE,
    'Write-Output "AGENTFIX_BEFORE_STATUS=$status AGENTFIX_BEFORE_VERSION=$version"',
    "if (($expected -ne '') -and $current) { Write-Output \"AGENTFIX_ALREADY_CURRENT=$short\"; exit 1 }",
  ],
};

/**
 * Fails the document (onFailure: exit) while the agent runs a lifecycle event: the agent keeps a file
 * per event in progress under `<root_dir>/ongoing-deployment` (1.x and 2.x alike; older than 24 hours
 * counts as stale, as the agent itself treats it), and a restart in the middle fails the event
 * ("Failing in-progress lifecycle event after an agent restart", aws/aws-codedeploy-agent#402). Only a
 * running agent counts: one that crashed leaves its file behind and is exactly the one to replace.
 */
export const DEPLOYMENT_GUARD = {
  linux: [
    DEPLOYMENT_GUARD_MARKER,
    "busy=",
    "if systemctl is-active --quiet codedeploy-agent 2>/dev/null || service codedeploy-agent status >/dev/null 2>&1; then busy=$(find /opt/codedeploy-agent/deployment-root/ongoing-deployment -maxdepth 1 -type f -mmin -1440 2>/dev/null | head -n 1); fi",
    'if [ -n "$busy" ]; then echo "AGENTFIX_DEPLOYMENT_IN_PROGRESS=$(basename "$busy")"; exit 1; fi',
    'echo "AGENTFIX_DEPLOYMENT_IN_PROGRESS=none"',
  ],
  windows: [
    DEPLOYMENT_GUARD_MARKER,
    "$busy = $null",
    "$service = Get-Service -Name codedeployagent -ErrorAction SilentlyContinue",
    "if ($service -and $service.Status -eq 'Running') { $busy = Get-ChildItem -Path 'C:\\ProgramData\\Amazon\\CodeDeploy\\ongoing-deployment' -File -ErrorAction SilentlyContinue | Where-Object { $_.LastWriteTime -gt (Get-Date).AddHours(-24) } | Select-Object -First 1 }",
    'if ($busy) { Write-Output "AGENTFIX_DEPLOYMENT_IN_PROGRESS=$($busy.Name)"; exit 1 }',
    "Write-Output 'AGENTFIX_DEPLOYMENT_IN_PROGRESS=none'",
  ],
};

/** Succeeds only when the agent service runs at the expected version (any version when none is expected). */
export const VERIFY_AGENT = {
  linux: [
    VERIFY_MARKER,
    ...LINUX_PROBE,
    'echo "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
    '[ "$current" = yes ]',
  ],
  windows: [
    VERIFY_MARKER,
    ...WINDOWS_PROBE,
    'Write-Output "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
    "if (-not $current) { exit 1 }",
  ],
};

export type AgentRunState = "running" | "stopped" | "missing";

export interface AgentProbe {
  state: AgentRunState;
  /** Normalised semantic version (`1.8.1`), or "" when unknown. */
  version: string;
  /** What the instance printed, for the report. */
  raw: string;
}

const AFTER = /AGENTFIX_AGENT_STATUS=(running|stopped|missing)\s+AGENTFIX_AGENT_VERSION=(\S*)/;
const BEFORE = /AGENTFIX_BEFORE_STATUS=(running|stopped|missing)\s+AGENTFIX_BEFORE_VERSION=(\S*)/;

/** The agent as the verification saw it; undefined when the output does not carry the line. */
export function parseProbe(output: string | undefined): AgentProbe | undefined {
  return parseState(AFTER, output);
}

/** The agent as it was before the install (skip-if-current); undefined when not printed. */
export function parseBefore(output: string | undefined): AgentProbe | undefined {
  return parseState(BEFORE, output);
}

/** The deployment whose lifecycle event runs on the instance, when the guard stopped the install. */
export function parseDeploymentInProgress(output: string | undefined): string | undefined {
  const id = /AGENTFIX_DEPLOYMENT_IN_PROGRESS=(\S+)/.exec(output ?? "")?.[1];
  return id && id !== "none" ? id : undefined;
}

/** The version that made the install unnecessary, when the agent already ran at it. */
export function parseAlreadyCurrent(output: string | undefined): string | undefined {
  return /AGENTFIX_ALREADY_CURRENT=(\S+)/.exec(output ?? "")?.[1];
}

function parseState(pattern: RegExp, output: string | undefined): AgentProbe | undefined {
  const match = output ? pattern.exec(output) : null;
  if (!match) return undefined;
  const raw = match[2] ?? "";
  return { state: match[1] as AgentRunState, version: normaliseVersion(raw), raw };
}

/** `OFFICIAL_1.8.1-1837_rpm` -> `1.8.1`; `codedeploy-agent 2.1.0` -> `2.1.0`. */
export function normaliseVersion(text: string): string {
  return /(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1] ?? "";
}

/** True when `version` satisfies the desired one: any version for "latest", else the same prefix. */
export function versionSatisfies(version: string, desired: string): boolean {
  if (!desired) return true;
  const want = desired.split(".");
  const have = version.split(".");
  return want.every((part, index) => have[index] === part);
}

/** Orders versions numerically (`1.10.0` after `1.9.2`); negative when `a` is older. */
export function compareVersions(a: string, b: string): number {
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let index = 0; index < Math.max(left.length, right.length); index += 1) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}
