// The verification commands and the parsing of what they print. The output contract is one line:
// `AGENTFIX_AGENT_STATUS=<running|stopped|missing> AGENTFIX_AGENT_VERSION=<version>`, then a non-zero
// exit unless the agent runs, so the invocation's Status alone says whether the agent runs and the
// output still carries the version.
//
// A `Success` from AWS-ConfigureAWSPackage does not prove the agent runs (Ruby breakage on new
// distributions, aws/aws-codedeploy-agent#321 and #337), hence this second, cheap command.
import { VERIFY_MARKER } from "../contract.js";

// Agent 1.x records its version in /opt/codedeploy-agent/.version as `agent_version: OFFICIAL_1.8.1-...`;
// agent 2.x answers `codedeploy-agent --version`
// (https://docs.aws.amazon.com/codedeploy/latest/userguide/codedeploy-agent-operations-version.html).
export const LINUX_VERIFY_COMMANDS = [
  VERIFY_MARKER,
  "status=missing; version=",
  "if [ -x /opt/codedeploy-agent/bin/codedeploy-agent ] || [ -f /opt/codedeploy-agent/.version ]; then status=stopped; fi",
  "if systemctl is-active --quiet codedeploy-agent 2>/dev/null || service codedeploy-agent status >/dev/null 2>&1; then status=running; fi",
  "if [ -f /opt/codedeploy-agent/.version ]; then version=$(sed -n 's/^agent_version: *//p' /opt/codedeploy-agent/.version | head -n 1); fi",
  'if [ -z "$version" ] && [ -x /opt/codedeploy-agent/bin/codedeploy-agent ]; then version=$(/opt/codedeploy-agent/bin/codedeploy-agent --version 2>/dev/null | head -n 1); fi',
  'echo "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
  '[ "$status" = running ]',
];

export const WINDOWS_VERIFY_COMMANDS = [
  VERIFY_MARKER,
  "$status = 'missing'; $version = ''",
  "$service = Get-Service -Name codedeployagent -ErrorAction SilentlyContinue",
  "if ($service) { $status = if ($service.Status -eq 'Running') { 'running' } else { 'stopped' } }",
  "$file = 'C:\\ProgramData\\Amazon\\CodeDeploy\\.version'",
  "if (Test-Path $file) { $version = ((Get-Content $file -TotalCount 1) -replace '^agent_version:\\s*', '') }",
  'Write-Output "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
  "if ($status -ne 'running') { exit 1 }",
];

export type AgentRunState = "running" | "stopped" | "missing";

export interface AgentProbe {
  state: AgentRunState;
  /** Normalised semantic version (`1.8.1`), or "" when unknown. */
  version: string;
  /** What the instance printed, for the report. */
  raw: string;
}

const LINE = /AGENTFIX_AGENT_STATUS=(running|stopped|missing)\s+AGENTFIX_AGENT_VERSION=(\S*)/;

/** Reads the verification line; undefined when the output does not carry it. */
export function parseProbe(output: string | undefined): AgentProbe | undefined {
  const match = output ? LINE.exec(output) : null;
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
