import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { morning } from "../../sandbox/scenarios/morning.js";
import { renderReport } from "../../sandbox/scenarios/report.js";
import { runScenario } from "../../sandbox/scenarios/run.js";

const run = promisify(execFile);
const chromium = await run("chromium", ["--version"]).then(
  () => "chromium",
  () => undefined,
);

describe("the morning scenario, end to end with the real handlers", () => {
  let report: { html: string; instances: number; deployments: number } | undefined;

  it("keeps the serviced group healthy while the group without it loops, then repairs a broken deployment", async () => {
    const lines: string[] = [];
    const result = await runScenario(morning, {
      instances: 2,
      seed: 3,
      onProgress: (line) => lines.push(line),
    });
    const { summary } = result;
    report = {
      html: renderReport(result),
      instances: result.sandbox.world.instances.size,
      deployments: result.sandbox.world.codeDeploy.deployments.size,
    };
    expect(summary.checks.filter((check) => !check.ok)).toEqual([]);
    expect(summary).toMatchObject({
      scenario: "morning",
      ok: true,
      instances: 2,
      inService: 2,
      verified: 2,
      abandoned: 0,
      lost: 0,
      lifecycleTimeouts: 0,
      duplicateInstalls: 0,
      launchDeploymentsFailed: 0,
      redeploys: 1,
      redeploysSucceeded: 1,
    });
    expect(summary.withoutService).toMatchObject({
      launchDeploymentsFailed: expect.any(Number),
      inService: 0,
    });
    expect((summary.withoutService as { replaced: number }).replaced).toBeGreaterThanOrEqual(2);
    expect(summary.apiCalls["AutoScaling.CompleteLifecycleAction"]).toBe(2);
    expect(summary.hookToCompleteSeconds.max).toBeGreaterThan(0);
    expect(lines.some((line) => line.includes("InService"))).toBe(true);
  });

  it.skipIf(!chromium)(
    "writes a timeline a browser renders, with one row per instance and per deployment",
    async () => {
      expect(report).toBeDefined();
      const file = join(mkdtempSync(join(tmpdir(), "agentfix-report-")), "morning.html");
      writeFileSync(file, report!.html);
      const { stdout } = await run(
        chromium!,
        ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", `file://${file}`],
        {
          maxBuffer: 16 * 1024 * 1024,
        },
      );
      const rows = (stdout.match(/<tr>/g) ?? []).length;
      // Past deployments seeded before the run (the last successful release) are not drawn.
      expect(rows).toBeGreaterThanOrEqual(report!.instances + report!.deployments - 3);
      expect(stdout).toContain("agentfix sandbox: morning (ok)");
      expect(stdout).toContain("in service");
    },
  );
});
