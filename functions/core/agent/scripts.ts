// The scripts of the stage's install document and the parsing of what they print. Each script prints
// `AGENTFIX_...=value` lines, the evidence the function reads back from the command output:
//   skip-if-current   AGENTFIX_BEFORE_STATUS=<running|stopped|missing> AGENTFIX_BEFORE_VERSION=<v>
//                     and, when the agent already runs at an acceptable version, its AGENT line and
//                     AGENTFIX_ALREADY_CURRENT=<v> (the document then ends: nothing to install)
//   deployment-guard  AGENTFIX_DEPLOYMENT_IN_PROGRESS=<none|deployment id>
//                     AGENTFIX_RESTART_NEEDED=<none|v>: an older agent runs and the install would
//                     restart it; the function asks CodeDeploy first (allowRestart=no)
//   verify-agent      AGENTFIX_AGENT_STATUS=<running|stopped|missing> AGENTFIX_AGENT_VERSION=<v>
// A `Success` from Distributor does not prove the agent runs (aws/aws-codedeploy-agent#321, #337), and
// a step that fails early prints nothing: only an AGENT line that passes verified.ts counts.
// `{{ expectedVersion }}` and `{{ allowRestart }}` are document parameters restricted to digits and
// dots, and to yes/no.
import { DEPLOYMENT_GUARD_MARKER, SKIP_IF_CURRENT_MARKER, VERIFY_MARKER } from "../contract.js";
import { type AgentProbe, type AgentRunState, normaliseVersion } from "./verified.js";

/**
 * verified.ts's isAcceptable in POSIX sh (dash on Ubuntu runs it too): `acceptable VERSION EXPECTED`
 * succeeds when VERSION is EXPECTED or newer, component by component; "" expects nothing.
 */
const SH_ACCEPTABLE = [
  "acceptable() {",
  '  [ -z "$2" ] && return 0',
  '  [ -z "$1" ] && return 1',
  '  v="$1."; e="$2."',
  '  while [ -n "$e" ]; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  "    a=${v%%.*}; b=${e%%.*}; v=${v#*.}; e=${e#*.}",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  '    [ "${a:-0}" -gt "${b:-0}" ] && return 0',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  '    [ "${a:-0}" -lt "${b:-0}" ] && return 1',
  "  done",
  "  return 0",
  "}",
];

// Agent 1.x records its version in /opt/codedeploy-agent/.version as `agent_version: OFFICIAL_1.8.1-...`;
// agent 2.x answers `codedeploy-agent --version`
// (https://docs.aws.amazon.com/codedeploy/latest/userguide/codedeploy-agent-operations-version.html).
const SH_PROBE = [
  ...SH_ACCEPTABLE,
  "probe() {",
  "  status=missing; version=",
  "  if [ -x /opt/codedeploy-agent/bin/codedeploy-agent ] || [ -f /opt/codedeploy-agent/.version ]; then status=stopped; fi",
  "  if systemctl is-active --quiet codedeploy-agent 2>/dev/null || service codedeploy-agent status >/dev/null 2>&1; then status=running; fi",
  "  if [ -f /opt/codedeploy-agent/.version ]; then version=$(sed -n 's/^agent_version: *//p' /opt/codedeploy-agent/.version | head -n 1); fi",
  '  if [ -z "$version" ] && [ -x /opt/codedeploy-agent/bin/codedeploy-agent ]; then version=$(/opt/codedeploy-agent/bin/codedeploy-agent --version 2>/dev/null | head -n 1); fi',
  "  short=$(printf '%s' \"$version\" | grep -oE '[0-9]+\\.[0-9]+(\\.[0-9]+)?' | head -n 1)",
  "}",
  // A service just installed or started needs a few seconds to be active.
  'wait_running() { i=0; while [ $i -lt 30 ]; do probe; [ "$status" = running ] && return 0; sleep 2; i=$((i+1)); done; return 1; }',
  "start_agent() { systemctl start codedeploy-agent 2>/dev/null || service codedeploy-agent start >/dev/null 2>&1; }",
  "expected='{{ expectedVersion }}'",
  "probe",
];

const PS_PROBE = [
  "function Test-Acceptable($v, $e) {",
  "  if ($e -eq '') { return $true }; if ($v -eq '') { return $false }",
  "  $pad = { param($x) ((($x -split '\\.') + @('0', '0', '0'))[0..2]) -join '.' }",
  "  return ([version](& $pad $v)) -ge ([version](& $pad $e))",
  "}",
  "function Get-Agent {",
  "  $script:status = 'missing'; $script:version = ''",
  "  $script:service = Get-Service -Name codedeployagent -ErrorAction SilentlyContinue",
  "  if ($script:service) { $script:status = if ($script:service.Status -eq 'Running') { 'running' } else { 'stopped' } }",
  "  $file = 'C:\\ProgramData\\Amazon\\CodeDeploy\\.version'",
  "  if (Test-Path $file) { $script:version = ((Get-Content $file -TotalCount 1) -replace '^agent_version:\\s*', '') }",
  "  $script:short = if ($script:version -match '\\d+\\.\\d+(\\.\\d+)?') { $Matches[0] } else { '' }",
  "}",
  // A service still StartPending after an install reads as stopped: wait for Running.
  "function Wait-Running { if ($script:service) { try { $script:service.WaitForStatus('Running', [TimeSpan]::FromSeconds(60)) } catch { }; Get-Agent } }",
  "$expected = '{{ expectedVersion }}'",
  "Get-Agent",
];

/**
 * Ends the document (onFailure: successAndExit) when the agent already runs at an acceptable version;
 * a stopped agent at an acceptable version (an AMI that bakes it stopped) is started, not reinstalled.
 * "Latest" with no known newest version (expected "") always installs.
 */
export const SKIP_IF_CURRENT = {
  linux: [
    SKIP_IF_CURRENT_MARKER,
    ...SH_PROBE,
    'echo "AGENTFIX_BEFORE_STATUS=$status AGENTFIX_BEFORE_VERSION=$version"',
    'if [ -n "$expected" ] && [ "$status" = stopped ] && acceptable "$short" "$expected"; then start_agent; wait_running; fi',
    'if [ -n "$expected" ] && [ "$status" = running ] && acceptable "$short" "$expected"; then',
    '  echo "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
    '  echo "AGENTFIX_ALREADY_CURRENT=$short"; exit 1',
    "fi",
  ],
  windows: [
    SKIP_IF_CURRENT_MARKER,
    ...PS_PROBE,
    'Write-Output "AGENTFIX_BEFORE_STATUS=$status AGENTFIX_BEFORE_VERSION=$version"',
    "if (($expected -ne '') -and ($status -eq 'stopped') -and (Test-Acceptable $short $expected)) { Start-Service codedeployagent -ErrorAction SilentlyContinue; Wait-Running }",
    "if (($expected -ne '') -and ($status -eq 'running') -and (Test-Acceptable $short $expected)) {",
    '  Write-Output "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
    '  Write-Output "AGENTFIX_ALREADY_CURRENT=$short"; exit 1',
    "}",
  ],
};

/**
 * Fails the document (onFailure: exit) when the install would restart an agent that may be busy:
 * - while it runs a lifecycle event: the agent keeps a file per event in progress under
 *   `<root_dir>/ongoing-deployment` (older than 24 hours is stale, as the agent itself treats it), and a
 *   restart in the middle fails the event (aws/aws-codedeploy-agent#402);
 * - with allowRestart=no, whenever an older agent runs at all: between two lifecycle events there is
 *   no file, and only CodeDeploy knows whether a deployment is still in flight on the instance. The
 *   function asks it and sends the install again with allowRestart=yes.
 */
export const DEPLOYMENT_GUARD = {
  linux: [
    DEPLOYMENT_GUARD_MARKER,
    ...SH_PROBE,
    "busy=",
    'if [ "$status" = running ]; then busy=$(find /opt/codedeploy-agent/deployment-root/ongoing-deployment -maxdepth 1 -type f -mmin -1440 2>/dev/null | head -n 1); fi',
    'if [ -n "$busy" ]; then echo "AGENTFIX_DEPLOYMENT_IN_PROGRESS=$(basename "$busy")"; exit 1; fi',
    'echo "AGENTFIX_DEPLOYMENT_IN_PROGRESS=none"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
    'if [ \'{{ allowRestart }}\' != yes ] && [ "$status" = running ]; then echo "AGENTFIX_RESTART_NEEDED=${short:-unknown}"; exit 1; fi',
    'echo "AGENTFIX_RESTART_NEEDED=none"',
  ],
  windows: [
    DEPLOYMENT_GUARD_MARKER,
    ...PS_PROBE,
    "$busy = $null",
    "if ($status -eq 'running') { $busy = Get-ChildItem -Path 'C:\\ProgramData\\Amazon\\CodeDeploy\\ongoing-deployment' -File -ErrorAction SilentlyContinue | Where-Object { $_.LastWriteTime -gt (Get-Date).AddHours(-24) } | Select-Object -First 1 }",
    'if ($busy) { Write-Output "AGENTFIX_DEPLOYMENT_IN_PROGRESS=$($busy.Name)"; exit 1 }',
    "Write-Output 'AGENTFIX_DEPLOYMENT_IN_PROGRESS=none'",
    "if (('{{ allowRestart }}' -ne 'yes') -and ($status -eq 'running')) { Write-Output \"AGENTFIX_RESTART_NEEDED=$(if ($short) { $short } else { 'unknown' })\"; exit 1 }",
    "Write-Output 'AGENTFIX_RESTART_NEEDED=none'",
  ],
};

/**
 * Runs after the install whether it succeeded or not (Distributor fails a same-version install of
 * this package): waits for the service, starts an agent present at an acceptable version but stopped,
 * and succeeds only when the agent runs at an acceptable version.
 */
export const VERIFY_AGENT = {
  linux: [
    VERIFY_MARKER,
    ...SH_PROBE,
    'if [ "$status" = stopped ] && acceptable "$short" "$expected"; then start_agent; fi',
    'if [ "$status" = stopped ]; then wait_running; fi',
    'echo "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
    '[ "$status" = running ] && acceptable "$short" "$expected"',
  ],
  windows: [
    VERIFY_MARKER,
    ...PS_PROBE,
    "if (($status -eq 'stopped') -and (Test-Acceptable $short $expected)) { Start-Service codedeployagent -ErrorAction SilentlyContinue }",
    "if ($status -eq 'stopped') { Wait-Running }",
    'Write-Output "AGENTFIX_AGENT_STATUS=$status AGENTFIX_AGENT_VERSION=$version"',
    "if (-not (($status -eq 'running') -and (Test-Acceptable $short $expected))) { exit 1 }",
  ],
};

/** Everything the install document printed about the agent on one instance. */
export type Evidence = Partial<ReturnType<typeof readEvidence>>;

export function readEvidence(output: string | undefined) {
  const text = output ?? "";
  const value = (name: string) => {
    const found = new RegExp(`AGENTFIX_${name}=(\\S+)`).exec(text)?.[1];
    return found && found !== "none" ? found : undefined;
  };
  const probe = (prefix: string): AgentProbe | undefined => {
    const match = new RegExp(
      `AGENTFIX_${prefix}_STATUS=(running|stopped|missing)\\s+AGENTFIX_${prefix}_VERSION=(\\S*)`,
    ).exec(text);
    return match
      ? { state: match[1] as AgentRunState, version: normaliseVersion(match[2] ?? "") }
      : undefined;
  };
  return {
    before: probe("BEFORE"),
    after: probe("AGENT"),
    alreadyCurrent: value("ALREADY_CURRENT"),
    deploymentInProgress: value("DEPLOYMENT_IN_PROGRESS"),
    // The older agent that runs, when the document stopped before restarting it.
    restartNeeded: value("RESTART_NEEDED"),
  };
}
