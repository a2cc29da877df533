import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RELEASE_DIR, RELEASE_TEMPLATE } from "../../scripts/release.js";
import { evaluator } from "./cfn-evaluate.js";
import { cfnLint } from "./package-helpers.js";

/**
 * The CloudFormation release: `npm run release` writes one template with Parameters and the zips it
 * takes from ArtifactsBucket; it deploys with `aws cloudformation deploy`, StackSets or Terraform,
 * with no CDK bootstrap and no Node.js.
 */
const ROOT = join(import.meta.dirname, "..", "..");
const PARAMETERS = {
  Groups: ["web-prod", "api-prod"],
  DeploymentGroups: ["web/web-prod"],
  AlarmEmail: "ops@example.com",
  ArtifactsBucket: "agentfix-artifacts-us-east-1",
};

let template: Record<string, unknown>;
let folder: string;

beforeAll(() => {
  execFileSync("npm", ["run", "release"], { cwd: ROOT, stdio: "ignore" });
  template = JSON.parse(readFileSync(join(RELEASE_DIR, RELEASE_TEMPLATE), "utf8"));
  folder = mkdtempSync(join(tmpdir(), "agentfix-release-zips-"));
}, 120_000);

afterAll(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

type Resource = { Type: string; Properties: Record<string, unknown>; Condition?: string };
const functionsOf = (t: Record<string, unknown>) =>
  Object.entries(t.Resources as Record<string, Resource>).filter(
    ([, r]) => r.Type === "AWS::Lambda::Function",
  );

describe("the CloudFormation release", () => {
  it("takes its settings as parameters, lists as CommaDelimitedList", () => {
    const parameters = template.Parameters as Record<string, { Type: string; Default?: string }>;
    expect(Object.keys(parameters).sort()).toEqual(
      [
        "AgentPackage",
        "AgentVersion",
        "AlarmEmail",
        "ArtifactsBucket",
        "ArtifactsPrefix",
        "DeploymentGroups",
        "FailureResult",
        "Groups",
        "Schedule",
      ].sort(),
    );
    expect(parameters.Groups?.Type).toBe("CommaDelimitedList");
    expect(parameters.DeploymentGroups?.Type).toBe("CommaDelimitedList");
  });

  it("needs no CDK bootstrap: no BootstrapVersion, no cdk- asset bucket, no CDK metadata resource", () => {
    const text = JSON.stringify(template);
    expect(text).not.toMatch(/BootstrapVersion|cdk-hnb659fds|cdk-[a-z0-9]+-assets/);
    expect(template.Rules).toBeUndefined();
    expect(Object.values(template.Resources as Record<string, Resource>).map((r) => r.Type)).not.toContain(
      "AWS::CDK::Metadata",
    );
    // Every function's code is a zip of the release in the bucket the stack is given.
    for (const [, fn] of functionsOf(template)) {
      const code = evaluator({ template, parameters: PARAMETERS }).evaluate(fn.Properties.Code);
      expect(code).toEqual({
        S3Bucket: PARAMETERS.ArtifactsBucket,
        S3Key: expect.stringMatching(/^[a-z-]+\.zip$/),
      });
    }
  });

  it("puts one launch hook on each group the list names, and none on the slots it leaves empty", () => {
    const { created, evaluate } = evaluator({ template, parameters: PARAMETERS });
    const hooks = created().filter(([, r]) => r.Type === "AWS::AutoScaling::LifecycleHook");
    expect(hooks.map(([, r]) => evaluate(r.Properties?.AutoScalingGroupName))).toEqual([
      "web-prod",
      "api-prod",
    ]);
  });

  it("drains each hook it puts before deleting it, and has no drain on an empty slot", () => {
    const { created, evaluate } = evaluator({ template, parameters: PARAMETERS });
    const resources = created();
    const hooks = resources.filter(([, r]) => r.Type === "AWS::AutoScaling::LifecycleHook");
    const drains = resources.filter(([, r]) => r.Type === "Custom::LifecycleHookDrain");
    expect(drains.map(([, r]) => evaluate(r.Properties?.AutoScalingGroupName))).toEqual([
      "web-prod",
      "api-prod",
    ]);
    for (const [hookId, hook] of hooks) {
      const [, drain] = drains.find(
        ([, r]) =>
          evaluate(r.Properties?.AutoScalingGroupName) === evaluate(hook.Properties?.AutoScalingGroupName),
      ) ?? [undefined, { DependsOn: [], Condition: "(no drain)" }];
      // Deleted before its hook, and under the same condition as its hook.
      expect((drain as { DependsOn?: string[] }).DependsOn).toContain(hookId);
      expect(drain.Condition).toBe(hook.Condition);
    }
  });

  it("passes cfn-lint", () => {
    expect(cfnLint([join(RELEASE_DIR, RELEASE_TEMPLATE)])).toBe("");
  }, 60_000);

  it("ships each function as a zip that loads with the template's environment and refuses a bad event by name", () => {
    const runner = join(folder, "invoke.mjs");
    writeFileSync(
      runner,
      `const { handler } = await import(process.argv[2]);
const context = { functionName: "agentfix", awsRequestId: "req-1", getRemainingTimeInMillis: () => 30000 };
try {
  await handler(JSON.parse(process.argv[3]), context);
  console.log(JSON.stringify({ rejected: false }));
} catch (error) {
  console.log(JSON.stringify({ rejected: true, name: error.name, message: error.message }));
}
`,
    );
    const { evaluate } = evaluator({
      template,
      parameters: PARAMETERS,
      reference: (kind, id) => {
        const type = (template.Resources as Record<string, Resource>)[id]?.Type;
        if (type === "AWS::SQS::Queue") return `https://sqs.us-east-1.amazonaws.com/123456789012/${id}`;
        return kind === "Ref" ? id : `arn:aws:lambda:us-east-1:123456789012:function:${id}`;
      },
    });
    const functions = functionsOf(template);
    // launch, deployment-failure, sweep, preflight and drain-hook.
    expect(functions).toHaveLength(5);
    for (const [id, fn] of functions) {
      const code = evaluate(fn.Properties.Code) as { S3Key: string };
      const directory = join(folder, id);
      execFileSync("unzip", ["-q", "-o", join(RELEASE_DIR, code.S3Key), "-d", directory]);
      expect(fn.Properties.Handler).toBe("index.handler");
      const variables = evaluate(
        (fn.Properties.Environment as { Variables?: unknown } | undefined)?.Variables ?? {},
      ) as Record<string, string>;
      // The sweep takes any scheduled event (its fields are not read) and refuses only a bad dryRun.
      const bad = String(fn.Properties.FunctionName).endsWith("-sweep")
        ? { bad: true, dryRun: "yes" }
        : { bad: true };
      const output = execFileSync("node", [runner, join(directory, "index.mjs"), JSON.stringify(bad)], {
        encoding: "utf8",
        env: {
          PATH: process.env.PATH,
          AWS_REGION: "us-east-1",
          AWS_ACCESS_KEY_ID: "test",
          AWS_SECRET_ACCESS_KEY: "test",
          AWS_LAMBDA_FUNCTION_NAME: String(fn.Properties.FunctionName),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          POWERTOOLS_METRICS_DISABLED: "true",
          POWERTOOLS_LOG_LEVEL: "SILENT",
          ...variables,
          POWERTOOLS_TRACE_ENABLED: "false",
        },
      });
      const result = JSON.parse(output.trim().split("\n").at(-1)!) as { rejected: boolean; message?: string };
      expect({ function: fn.Properties.FunctionName, ...result }).toEqual({
        function: fn.Properties.FunctionName,
        rejected: true,
        name: expect.any(String),
        // The input named as the function reads it: "Invalid launch replay payload: ...", "Invalid sweep event: ...".
        message: expect.stringMatching(/^Invalid [a-z -]*(event|payload|batch)/i),
      });
    }
  }, 60_000);
});
