// What "a verified agent" means, decided in one place. The agent is verified when it runs at the
// version we expect or newer: an agent newer than expected is never wrong (AWS may publish a release
// after the function last looked). The install document's shell and PowerShell checks implement the
// same rule (scripts.ts), and tests/unit/agent-verified.test.ts runs the shell one against this table.

export type AgentRunState = "running" | "stopped" | "missing";

/** The agent as one of the install document's scripts saw it. */
export interface AgentProbe {
  state: AgentRunState;
  /** Normalised version (`1.8.1`), or "" when unknown. */
  version: string;
}

/** `OFFICIAL_1.8.1-1837_rpm` -> `1.8.1`; `codedeploy-agent 2.1.0` -> `2.1.0`. */
export function normaliseVersion(text: string): string {
  return /(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1] ?? "";
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

/** The one rule: `version` is `expected` or newer. "" expects nothing (any version is acceptable). */
export function isAcceptable(version: string, expected: string): boolean {
  if (!expected) return true;
  if (!version) return false;
  return compareVersions(version, expected) >= 0;
}

/** Verified: the agent runs, at an acceptable version. */
export function isVerified(probe: AgentProbe | undefined, expected: string): boolean {
  return probe?.state === "running" && isAcceptable(probe.version, expected);
}
