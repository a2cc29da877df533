import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { Code } from "aws-cdk-lib/aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentFix } from "../../lib/agentfix.js";
import { releaseStack } from "../../scripts/release.js";
import { synthesizeStage } from "../../scripts/synthesize.js";
import { evaluator } from "./cfn-evaluate.js";

/**
 * The same service whichever way in: one set of settings deployed as the SST stage, as the AgentFix
 * construct in a plain CDK app, and as the CloudFormation release with the same parameter values,
 * compared by resource types and counts, IAM statements, function environments and event patterns,
 * with every reference to a resource of the service named by its type and construct id.
 *
 * What must differ, and is left out of the comparison: SST's own per-stack custom-resource handler
 * (a function and its role in each SST stack), the code's location (SST and the construct: CDK
 * assets; the release: ArtifactsBucket/ArtifactsPrefix), and cross-stack exports (SST only).
 * The console's test events are off here: the release leaves them out (their registry needs a
 * custom resource whose code is a CDK asset), the SST stage and the construct have them by default.
 */
const SETTINGS = {
  groups: ["web-prod", "api-prod"],
  deploymentGroups: ["web/web-prod"],
  version: "1.8.1",
  schedule: "cron(0 2 ? * SUN *)",
  email: "ops@example.com",
};

type Json = Record<string, unknown>;
type Resource = { Type: string; Properties?: Json; Condition?: string };

interface Deployment {
  /** Resources CloudFormation creates, by logical id, with the template each one is in. */
  resources: { id: string; resource: Resource; evaluate: (value: unknown) => unknown }[];
}

const PARTS =
  /^AgentFix(Foundation|LaunchPath|FailurePath|Sweep|AgentAssociation|Monitoring|ConsoleTestEvents)/;

/** A resource's id without the hash CDK appends and the construct's path prefix. */
function shortId(logicalId: string): string {
  return logicalId.replace(/[0-9A-F]{8}$/, "").replace(PARTS, "");
}

function deployment(templates: Json[], parameters: Record<string, string | string[]> = {}): Deployment {
  const exports = new Map<string, { template: Json; value: unknown }>();
  for (const template of templates)
    for (const output of Object.values((template.Outputs ?? {}) as Record<string, Json>)) {
      const name = (output.Export as { Name?: string } | undefined)?.Name;
      if (name) exports.set(name, { template, value: output.Value });
    }
  const result: Deployment = { resources: [] };
  for (const template of templates) {
    const named = (id: string, attribute?: string): string => {
      const type = (template.Resources as Record<string, Resource>)[id]?.Type ?? "?";
      return `<${type}:${shortId(id)}${attribute ? `.${attribute}` : ""}>`;
    };
    const { evaluate, created } = evaluator({
      template,
      parameters,
      reference: (kind, id, attribute) => {
        if (kind !== "Import") return named(id, attribute);
        const exported = exports.get(id);
        if (!exported) return `<Import:${id}>`;
        return String(
          evaluator({
            template: exported.template,
            reference: (_kind, target, attr) => {
              const type = (exported.template.Resources as Record<string, Resource>)[target]?.Type ?? "?";
              return `<${type}:${shortId(target)}${attr ? `.${attr}` : ""}>`;
            },
          }).evaluate(exported.value),
        );
      },
    });
    for (const [id, resource] of created()) {
      // SST's own per-stack custom-resource handler.
      if (id.startsWith("CustomResourceHandler")) continue;
      result.resources.push({ id, resource, evaluate });
    }
  }
  return result;
}

function typeCounts(d: Deployment): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { resource } of d.resources) counts[resource.Type] = (counts[resource.Type] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

const asArray = (value: unknown): unknown[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];
const set = (values: unknown[]) => [...new Set(values.map((value) => JSON.stringify(value)))].sort();

/**
 * Lists in a value as sets (a release names a group once per slot; a set is what IAM and EventBridge
 * read), a list of one as its item (as CDK writes a single IAM resource).
 */
function normalise(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = set(value.map(normalise)).map((item) => JSON.parse(item));
    return items.length === 1 ? items[0] : items;
  }
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value as Json)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, item]) => [key, normalise(item)]),
    );
  return value;
}

/** Per function name: its IAM statements, environment; per rule: its pattern or schedule. */
function behaviour(d: Deployment) {
  const functions: Record<string, { statements: string[]; environment: unknown }> = {};
  for (const { id, resource, evaluate } of d.resources) {
    if (resource.Type !== "AWS::Lambda::Function") continue;
    const name = String(resource.Properties?.FunctionName ?? id);
    const role = evaluate(resource.Properties?.Role) as string;
    const documents: unknown[] = [];
    for (const other of d.resources) {
      const props = other.resource.Properties ?? {};
      if (other.resource.Type === "AWS::IAM::Role" && `<AWS::IAM::Role:${shortId(other.id)}.Arn>` === role)
        documents.push(...asArray(props.Policies).map((policy) => (policy as Json).PolicyDocument));
      if (
        other.resource.Type === "AWS::IAM::Policy" &&
        asArray(other.evaluate(props.Roles)).some((ref) => `${String(ref).slice(0, -1)}.Arn>` === role)
      )
        documents.push(props.PolicyDocument);
    }
    const statements = documents.flatMap((document) =>
      asArray((evaluate(document) as Json).Statement).map((statement) =>
        JSON.stringify(normalise(statement)),
      ),
    );
    const variables = (evaluate(resource.Properties?.Environment) as { Variables?: Json } | undefined)
      ?.Variables;
    functions[name] = { statements: statements.sort(), environment: normalise(variables ?? {}) };
  }
  const rules = d.resources
    .filter(({ resource }) => resource.Type === "AWS::Events::Rule")
    .map(({ id, resource, evaluate }) =>
      JSON.stringify({
        id: shortId(id),
        ...(normalise(
          evaluate({
            pattern: resource.Properties?.EventPattern,
            schedule: resource.Properties?.ScheduleExpression,
            state: resource.Properties?.State,
          }),
        ) as Json),
      }),
    )
    .sort();
  const association = d.resources
    .filter(({ resource }) => resource.Type === "AWS::SSM::Association")
    .map(({ resource, evaluate }) => normalise(evaluate(resource.Properties)));
  const hooks = d.resources
    .filter(({ resource }) => resource.Type === "AWS::AutoScaling::LifecycleHook")
    .map(({ resource, evaluate }) => JSON.stringify(normalise(evaluate(resource.Properties))))
    .sort();
  return { functions, rules, association, hooks };
}

let sst: Deployment;
let construct: Deployment;
let release: Deployment;
let folder: string;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), "agentfix-three-ways-"));
  const file = join(folder, "agentfix.config.json");
  writeFileSync(
    file,
    JSON.stringify({
      prod: {
        groups: SETTINGS.groups,
        deploymentGroups: SETTINGS.deploymentGroups,
        agent: { version: SETTINGS.version },
        association: { schedule: SETTINGS.schedule },
        alarms: { email: SETTINGS.email },
        testEvents: { enabled: false },
      },
    }),
  );
  process.env.AGENTFIX_CONFIG_FILE = file;
  delete process.env.AGENTFIX_CONFIG;
  const stage = await synthesizeStage({ stage: "prod", bundle: false, nag: false });
  sst = deployment(stage.stacks.map((stack) => stack.template));

  const app = new App({ analyticsReporting: false });
  const stack = new Stack(app, "Agentfix", { env: { region: "us-east-1", account: "123456789012" } });
  new AgentFix(
    stack,
    "AgentFix",
    {
      stage: "prod",
      groups: SETTINGS.groups,
      deploymentGroupNames: SETTINGS.deploymentGroups,
      agent: { version: SETTINGS.version },
      schedule: SETTINGS.schedule,
      alarmEmail: SETTINGS.email,
      testEvents: { enabled: false },
    },
    { code: () => Code.fromInline("// the pre-built bundle") },
  );
  construct = deployment([app.synth().getStackByName("Agentfix").template]);

  const built = releaseStack("prod");
  const assembly = built.app.synth();
  release = deployment([assembly.getStackByName(built.stack.stackName).template], {
    Groups: SETTINGS.groups,
    DeploymentGroups: SETTINGS.deploymentGroups,
    AgentVersion: SETTINGS.version,
    Schedule: SETTINGS.schedule,
    AlarmEmail: SETTINGS.email,
    ArtifactsBucket: "agentfix-artifacts",
  });
  rmSync(assembly.directory, { recursive: true, force: true });
}, 120_000);

afterAll(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe("the SST stage, the construct and the release deploy the same service", () => {
  it("creates the same resource types, as many of each", () => {
    expect(typeCounts(construct)).toEqual(typeCounts(sst));
    expect(typeCounts(release)).toEqual(typeCounts(sst));
    expect(typeCounts(sst)["AWS::AutoScaling::LifecycleHook"]).toBe(2);
    // A drain per hook: the release's empty slots have neither.
    expect(typeCounts(sst)["Custom::LifecycleHookDrain"]).toBe(2);
  });

  it("grants each function the same IAM statements, and gives it the same environment", () => {
    const expected = behaviour(sst).functions;
    expect(Object.keys(expected).sort()).toEqual([
      "agentfix-prod-deployment-failure",
      "agentfix-prod-drain-hook",
      "agentfix-prod-launch",
      "agentfix-prod-preflight",
      "agentfix-prod-sweep",
    ]);
    expect(behaviour(construct).functions).toEqual(expected);
    expect(behaviour(release).functions).toEqual(expected);
  });

  it("routes the same events, hooks the same groups and schedules the same association", () => {
    const expected = behaviour(sst);
    for (const other of [behaviour(construct), behaviour(release)]) {
      expect(other.rules).toEqual(expected.rules);
      expect(other.hooks).toEqual(expected.hooks);
      expect(other.association).toEqual(expected.association);
    }
  });
});
