import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { limiter } from "../../functions/core/common/concurrency.js";
import { SCENARIOS } from "../../sandbox/scenarios/index.js";

const ROOT = resolve(import.meta.dirname, "../..");
// Each run keeps a core busy; two at a time is what a two-core machine takes without stretching the
// sandbox's clock under the handlers.
const gate = limiter(2);
// Small fleets keep the whole file within a minute; every scenario takes --instances.
const MAX_INSTANCES = 4;
// A hung run must fail its test and not outlive it.
const RUN_TIMEOUT_MS = 120_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `npm start -- <args>`: the same command line, as a child process of its own. */
function npmStart(args: string[]): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["--import", "./sandbox/register.mjs", "sandbox/cli.ts", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: RUN_TIMEOUT_MS,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.once("error", fail);
    child.once("close", (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/** What to show when a run fails: how it ended and the end of its stderr (a stack trace, most often). */
function ending(run: Run): string {
  return `exit ${run.code ?? run.signal}\n${run.stderr.slice(-2000)}`;
}

const runs = Object.entries(SCENARIOS).flatMap(([name, scenario]) => {
  const args = [
    "--scenario",
    name,
    "--instances",
    String(Math.min(scenario.defaultInstances, MAX_INSTANCES)),
  ];
  return [
    { name, mode: "plain", args },
    { name, mode: "--json", args: [...args, "--json"] },
  ];
});

describe("npm start -- --scenario <name>, for every registered scenario", () => {
  it.concurrent.each(runs)(
    "$name ($mode) runs to exit 0 and reports ok",
    async ({ name, mode, args }) => {
      const run = await gate(() => npmStart(args));
      expect(run.code, ending(run)).toBe(0);
      if (mode === "plain") {
        expect(run.stdout.trimEnd().split("\n").at(-1)).toBe("ok: true");
        return;
      }
      // With --json, stdout holds the figures alone (progress goes to stderr).
      const summary = JSON.parse(run.stdout) as { scenario: string; ok: boolean };
      expect(summary.scenario).toBe(SCENARIOS[name]!.name);
      expect(summary.ok).toBe(true);
    },
    // The gate queues the runs, so a test's time includes its wait for a slot.
    300_000,
  );
});
