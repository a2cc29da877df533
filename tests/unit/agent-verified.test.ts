import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SKIP_IF_CURRENT } from "../../functions/core/agent/scripts.js";
import { judgeInstall } from "../../functions/core/agent/verdicts.js";
import { isAcceptable, isVerified } from "../../functions/core/agent/verified.js";
import { defaultLaunchConfig } from "../../functions/core/config.js";
import {
  alreadyCurrent,
  deploymentInProgress,
  installedAndVerified,
  installedButNotVerified,
  installFailed,
  invocation,
  restartNeeded,
  running,
  stopped,
} from "./support/aws-answers.js";

/** (running version, expected version) -> acceptable: the one rule, newer is never wrong. */
const TABLE: [string, string, boolean][] = [
  ["1.8.1", "1.8.1", true],
  ["1.8.2", "1.8.1", true],
  ["1.10.0", "1.9.2", true],
  ["2.1.0", "1.8.1", true],
  ["1.8.0", "1.8.1", false],
  ["1.7.1", "1.8.1", false],
  ["1.9", "1.8.1", true],
  ["1.8", "1.8.1", false],
  ["", "1.8.1", false],
  ["1.6.0", "", true],
  ["", "", true],
];

/** The shell rule as the install document runs it: the function definition of the skip step. */
function shellRule(): string {
  const lines = SKIP_IF_CURRENT.linux;
  const start = lines.indexOf("acceptable() {");
  const end = lines.indexOf("}", start);
  return lines.slice(start, end + 1).join("\n");
}

describe("a verified agent, decided once", () => {
  it.each(TABLE)("accepts agent %s against %s: %s", (version, expected, acceptable) => {
    expect(isAcceptable(version, expected)).toBe(acceptable);
  });

  for (const shell of ["/bin/sh", "/usr/bin/dash", "/bin/bash"].filter((path) => existsSync(path))) {
    it(`runs the same rule in the install document's shell script (${shell})`, () => {
      const cases = TABLE.map(
        ([version, expected]) => `acceptable '${version}' '${expected}' && echo yes || echo no`,
      );
      const output = execFileSync(shell, ["-c", [shellRule(), ...cases].join("\n")], { encoding: "utf8" });
      expect(output.trim().split("\n")).toEqual(TABLE.map(([, , acceptable]) => (acceptable ? "yes" : "no")));
    });
  }

  it("verifies only a running agent", () => {
    expect(isVerified({ state: "running", version: "1.8.1" }, "1.8.1")).toBe(true);
    expect(isVerified({ state: "stopped", version: "1.8.1" }, "1.8.1")).toBe(false);
    expect(isVerified(undefined, "")).toBe(false);
  });
});

describe("what an ended install means", () => {
  const settings = defaultLaunchConfig();
  const pinned = defaultLaunchConfig({ AGENT_VERSION: "1.8.1" });

  it("verifies an install only on evidence of a running agent: Success alone is not enough", () => {
    const bare = invocation("c-1", "i-0000000000000000a", "Success", {
      CommandPlugins: [{ Name: "skipIfCurrentLinux", Status: "Success", Output: "" }],
    });
    const judged = judgeInstall(bare, settings, "1.8.1");
    expect(judged.verdict).toMatchObject({ kind: "failed", fault: "instance", retryable: true });
    expect(judged.verdict.reason).toContain("printed no evidence of a running agent");
  });

  it("takes the install's end from its last step's finish, as SSM reports it", () => {
    const ended = installedAndVerified("c-1", "i-0000000000000000a", "1.8.1");
    const finishes = [10_000, 41_000, 39_000].map((ms) => Date.parse("2026-12-01T08:00:00Z") + ms);
    const steps = (ended.CommandPlugins ?? []).map((step, index) =>
      index < finishes.length ? { ...step, ResponseFinishDateTime: new Date(finishes[index] ?? 0) } : step,
    );
    expect(judgeInstall({ ...ended, CommandPlugins: steps }, pinned, "1.8.1").endedAt).toBe(finishes[1]);
    expect(judgeInstall(ended, pinned, "1.8.1").endedAt).toBeUndefined();
  });

  it("accepts an agent newer than the version the function expected", () => {
    const judged = judgeInstall(alreadyCurrent("c-1", "i-0000000000000000a", "1.8.2"), pinned, "1.8.1");
    expect(judged.verdict).toMatchObject({ kind: "verified", installed: false });
  });

  it("accepts what Distributor installed on a stage that takes the latest, even past the version it knew", () => {
    const judged = judgeInstall(
      installedAndVerified("c-1", "i-0000000000000000a", "1.8.3"),
      settings,
      "1.8.2",
    );
    expect(judged.verdict).toMatchObject({ kind: "verified", installed: true });
  });

  it("verifies an agent present at the expected version after Distributor failed a same-version install", () => {
    const failed = installFailed("c-1", "i-0000000000000000a", { after: running("1.8.1") });
    expect(judgeInstall(failed, pinned, "1.8.1").verdict).toMatchObject({
      kind: "verified",
      installed: false,
    });
  });

  it("fails an installed agent that does not run, as the instance's own fault", () => {
    const judged = judgeInstall(
      installedButNotVerified("c-1", "i-0000000000000000a", stopped("1.8.1")),
      pinned,
      "1.8.1",
    );
    expect(judged.verdict).toMatchObject({ kind: "failed", fault: "instance" });
  });

  it("calls a Distributor that cannot find the package the service's fault, not the instance's", () => {
    const failed = installFailed(
      "c-1",
      "i-0000000000000000a",
      {},
      "Failed to retrieve manifest: ResourceNotFoundException",
    );
    expect(judgeInstall(failed, settings, "").verdict).toMatchObject({ kind: "failed", fault: "service" });
  });

  it("waits for a deployment running on the instance, and asks CodeDeploy before restarting an older agent", () => {
    const deploying = deploymentInProgress("c-1", "i-0000000000000000a", "d-1", { before: running("1.7.1") });
    expect(judgeInstall(deploying, pinned, "1.8.1").verdict.kind).toBe("busy");
    const older = restartNeeded("c-1", "i-0000000000000000a", running("1.6.0"));
    expect(judgeInstall(older, pinned, "1.8.1").verdict.kind).toBe("restart-check");
  });
});
