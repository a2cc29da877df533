import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cfnLint, nagFindings } from "./package-helpers.js";
import { type Resource, resources } from "./template-helpers.js";

/**
 * The package as a CDK user gets it: `npm pack` of the repository (which builds dist/ first), installed
 * with aws-cdk-lib and constructs from the npm registry into an empty folder with nothing else from
 * this repository, and an app of ten lines that synthesizes with `node` (no esbuild in that folder).
 */
const ROOT = join(import.meta.dirname, "..", "..");

/** What a user writes (README, "As a CDK construct"). */
const USER_APP = `import { App, Stack } from "aws-cdk-lib";
import { AgentFix } from "agentfix";

const app = new App();
const stack = new Stack(app, "Agentfix", { env: { region: "eu-west-1" } });
new AgentFix(stack, "AgentFix", {
  groups: ["web-prod", "api-prod"],
  deploymentGroupNames: ["web/web-prod", "api/api-prod"],
  agent: { version: "1.8.1" },
  alarmEmail: "ops@example.com",
});
app.synth();
`;

let folder: string;
let template: Record<string, unknown>;
let nag: string[];

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(command, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), "agentfix-user-app-"));
  // prepack builds dist/ (npm run build:lib) first.
  run("npm", ["pack", "--pack-destination", folder], ROOT);
  const tarball = join(folder, readdirSync(folder).find((name) => name.endsWith(".tgz"))!);
  const app = join(folder, "app");
  execFileSync("mkdir", [app]);
  run("npm", ["init", "-y"], app);
  run("npm", ["install", "--prefer-offline", tarball, "aws-cdk-lib@2.224.0", "constructs@10.3.0"], app);
  writeFileSync(join(app, "app.mjs"), USER_APP);
  // The same app with the cdk-nag AwsSolutions checks added (cdk-nag comes with the package).
  writeFileSync(
    join(app, "nag.mjs"),
    USER_APP.replace(
      "const app = new App();",
      'import { Aspects } from "aws-cdk-lib";\nimport { AwsSolutionsChecks } from "cdk-nag";\nconst app = new App();\nAspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));',
    ),
  );
  run("node", ["app.mjs"], app, { CDK_OUTDIR: join(app, "cdk.out") });
  template = JSON.parse(readFileSync(join(app, "cdk.out", "Agentfix.template.json"), "utf8"));
  run("node", ["nag.mjs"], app, { CDK_OUTDIR: join(app, "nag.out") });
  nag = nagFindings(join(app, "nag.out"));
}, 240_000);

afterAll(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe("the npm package in a CDK app of its own", () => {
  it("installs without esbuild, and synthesizes the functions from the pre-built bundles", () => {
    const app = join(folder, "app");
    expect(existsSync(join(app, "node_modules", "esbuild"))).toBe(false);
    expect(existsSync(join(app, "node_modules", "sst"))).toBe(false);
    const assets = readdirSync(join(app, "cdk.out")).filter((name) => name.startsWith("asset."));
    const bundles = assets.filter((name) => existsSync(join(app, "cdk.out", name, "index.mjs")));
    // launch, deployment-failure, sweep, preflight and drain-hook.
    expect(bundles).toHaveLength(5);
  });

  it("deploys the launch and failure paths for the groups it is given, on nodejs22.x", () => {
    const ours = resources(template, "AWS::Lambda::Function").filter((fn: Resource) =>
      String(fn.Properties.FunctionName ?? "").startsWith("agentfix-"),
    );
    expect(ours.map((fn) => fn.Properties.FunctionName).sort()).toEqual([
      "agentfix-default-deployment-failure",
      "agentfix-default-drain-hook",
      "agentfix-default-launch",
      "agentfix-default-preflight",
      "agentfix-default-sweep",
    ]);
    for (const fn of ours)
      expect(fn.Properties).toMatchObject({ Runtime: "nodejs22.x", Handler: "index.handler" });
    expect(
      resources(template, "AWS::AutoScaling::LifecycleHook").map(
        (hook) => hook.Properties.AutoScalingGroupName,
      ),
    ).toEqual(["web-prod", "api-prod"]);
    // Each hook drained before it is deleted.
    expect(
      resources(template, "Custom::LifecycleHookDrain").map((drain) => drain.Properties.AutoScalingGroupName),
    ).toEqual(["web-prod", "api-prod"]);
    expect(resources(template, "AWS::SSM::Association")).toHaveLength(1);
  });

  it("leaves no unsuppressed cdk-nag AwsSolutions finding", () => {
    expect(nag).toEqual([]);
  });

  it("passes cfn-lint", () => {
    expect(cfnLint([join(folder, "app", "cdk.out", "Agentfix.template.json")])).toBe("");
  }, 60_000);
});
