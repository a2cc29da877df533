import { describe, expect, it } from "vitest";
import { runReplay } from "../../scripts/replay.js";

async function replay(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runReplay(argv, { out: (text) => out.push(text), err: (text) => err.push(text) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("npm run replay --sandbox", () => {
  it("replays a launch on a local fleet and prints the launch function's report", async () => {
    const result = await replay(
      "launch",
      "--sandbox",
      "--instance",
      "i-0123456789abcdef0",
      "--group",
      "web-asg",
    );
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/i-0123456789abcdef0\s+web-asg\s+CONTINUE\s+1\.8\.1/);
  });

  it("replays a saved console event file", async () => {
    const result = await replay("launch", "--sandbox", "--event", "events/launch.eventbridge.json", "--json");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out);
    expect(report.instances).toMatchObject([
      { instanceId: "i-1234567890abcdef0", autoScalingGroupName: "my-asg", outcome: "CONTINUE" },
    ]);
  });

  it("replays a failed deployment: the agent is upgraded and the same revision redeployed", async () => {
    const result = await replay("deployment", "--sandbox", "--deployment", "d-ABCDEF123", "--json");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out);
    expect(report).toMatchObject({ deploymentId: "d-ABCDEF123", decision: "REDEPLOYED" });
    expect(report.upgraded[0]).toMatchObject({ from: "1.7.1", to: "1.8.1" });
  });
});
