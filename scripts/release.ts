import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  App,
  BootstraplessSynthesizer,
  CfnCondition,
  CfnParameter,
  type CfnResource,
  Fn,
  Stack,
  Token,
} from "aws-cdk-lib";
import { Code } from "aws-cdk-lib/aws-lambda";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { AGENT_PACKAGES, GROUP_TAG } from "../functions/core/contract.js";
import { AgentFix } from "../lib/agentfix.js";
import { FULL_VERSION } from "../stacks/config.js";
import { DEFAULT_PINS } from "../stacks/stage-policy.js";
import { bundleFunctions, PROJECT_ROOT } from "./bundle-functions.js";

/**
 * `npm run release [-- --stage prod]`: dist/release/agentfix.template.json, one CloudFormation
 * template of the AgentFix construct whose settings are Parameters, and the function zips it takes
 * from ArtifactsBucket/ArtifactsPrefix (dist/release/<function>.zip). It needs no CDK bootstrap (no
 * asset bucket, no BootstrapVersion) and no Node.js to deploy: `aws cloudformation deploy`,
 * StackSets (a bucket per Region holding the zips) or Terraform's aws_cloudformation_stack.
 */

/** Groups and deployment groups a release stack takes (CloudFormation has no loops: one slot each). */
export const MAX_GROUPS = 10;
export const RELEASE_TEMPLATE = "agentfix.template.json";
export const RELEASE_DIR = join(PROJECT_ROOT, "dist", "release");

/**
 * Slot i of a comma-delimited list parameter: its i-th item, or the first item when the list is
 * shorter (a repeated name is harmless in a list of names), with the condition that slot i is an
 * item of its own.
 */
function slots(
  stack: Stack,
  prefix: string,
  list: CfnParameter,
): { values: string[]; items: string[]; own: CfnCondition[] } {
  const padded = Fn.split(",", Fn.join("", [Fn.join(",", list.valueAsList), ",".repeat(MAX_GROUPS - 1)]));
  const first = Fn.select(0, padded);
  const values = [first];
  const items = [first];
  const own: CfnCondition[] = [];
  for (let i = 1; i < MAX_GROUPS; i++) {
    const condition = new CfnCondition(stack, `${prefix}${i}Named`, {
      expression: Fn.conditionNot(Fn.conditionEquals(Fn.select(i, padded), "")),
    });
    own.push(condition);
    items.push(Fn.select(i, padded));
    values.push(Fn.conditionIf(condition.logicalId, Fn.select(i, padded), first).toString());
  }
  return { values, items, own };
}

export function releaseStack(stage: string): { app: App; stack: Stack } {
  const app = new App({
    analyticsReporting: false,
    outdir: mkdtempSync(join(tmpdir(), "agentfix-release-")),
  });
  const stack = new Stack(app, "agentfix", {
    synthesizer: new BootstraplessSynthesizer({}),
    description: `agentfix ${stage}: keeps the CodeDeploy agent current on Auto Scaling groups and repairs the deployments an outdated agent broke`,
  });
  const parameter = (id: string, props: ConstructorParameters<typeof CfnParameter>[2]) =>
    new CfnParameter(stack, id, props);
  const groups = parameter("Groups", {
    type: "CommaDelimitedList",
    description: `Auto Scaling groups in scope, by name (1 to ${MAX_GROUPS}); our launch hook is put on each`,
  });
  const deploymentGroups = parameter("DeploymentGroups", {
    type: "CommaDelimitedList",
    description: `CodeDeploy deployment groups in scope, as application/deployment-group (1 to ${MAX_GROUPS})`,
  });
  const agentPackage = parameter("AgentPackage", {
    type: "String",
    default: "AWSCodeDeployAgent",
    allowedValues: [...AGENT_PACKAGES],
    description: "Distributor package: AWSCodeDeployAgent (1.x) or AWSCodeDeployAgentV2 (2.x)",
  });
  const agentVersion = parameter("AgentVersion", {
    type: "String",
    default: DEFAULT_PINS.AWSCodeDeployAgent,
    allowedPattern: FULL_VERSION.source,
    constraintDescription: `a full version X.Y.Z such as ${DEFAULT_PINS.AWSCodeDeployAgent}, or empty for the latest`,
    description: "Pinned agent version (X.Y.Z of the package's major version), or empty for the latest",
  });
  const schedule = parameter("Schedule", {
    type: "String",
    default: "cron(0 3 ? * * *)",
    // Only cron(): the association applies only at the cron interval, which State Manager refuses
    // with a rate() schedule at CreateAssociation (the stage configuration refuses it too).
    allowedPattern: "^cron\\(\\S+( \\S+){4,5}\\)$",
    constraintDescription: "cron(<fields>), such as cron(0 3 ? * * *)",
    description: "When the State Manager association brings long-lived instances' agents up to date",
  });
  const alarmEmail = parameter("AlarmEmail", {
    type: "String",
    allowedPattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$",
    constraintDescription: "an e-mail address",
    description: "Who receives the alarms (a subscription to confirm is mailed)",
  });
  const failureResult = parameter("FailureResult", {
    type: "String",
    default: "CONTINUE",
    allowedValues: ["CONTINUE", "ABANDON"],
    description: "The lifecycle result of a launch whose own agent install failed (CONTINUE fails open)",
  });
  const bucket = parameter("ArtifactsBucket", {
    type: "String",
    description: "The S3 bucket, in the stack's Region, holding the function zips of the release",
  });
  const prefix = parameter("ArtifactsPrefix", {
    type: "String",
    default: "",
    description: "The key prefix of the zips in ArtifactsBucket (ending with / when it is a folder)",
  });

  const groupSlots = slots(stack, "Group", groups);
  const pairSlots = slots(stack, "DeploymentGroup", deploymentGroups);
  const artifacts = Bucket.fromBucketName(stack, "Artifacts", bucket.valueAsString);
  const agentfix = new AgentFix(
    stack,
    "AgentFix",
    {
      stage,
      groups: groupSlots.values,
      deploymentGroupNames: pairSlots.values.map(
        (pair) => `${Fn.select(0, Fn.split("/", pair))}/${Fn.select(1, Fn.split("/", pair))}`,
      ),
      agent: {
        package: agentPackage.valueAsString as "AWSCodeDeployAgent",
        version: agentVersion.valueAsString,
      },
      schedule: schedule.valueAsString,
      alarmEmail: alarmEmail.valueAsString,
      launch: { failureResult: failureResult.valueAsString as "CONTINUE" },
      // The association reaches the groups as the list says them, each once.
      association: { target: { key: `tag:${GROUP_TAG}`, values: Token.asList(groups.valueAsList) } },
      // The console's test events need a custom resource whose code is a CDK asset: left out.
      testEvents: { enabled: false },
    },
    {
      code: (name) => Code.fromBucket(artifacts, Fn.join("", [prefix.valueAsString, `${name}.zip`])),
      groupKeys: new Map(groupSlots.values.map((value, i) => [value, `slot${i}`])),
    },
  );
  // The functions get the lists as the stack was given them (each name once).
  for (const fn of [agentfix.launchFunction, agentfix.sweepFunction])
    fn?.addEnvironment("TARGET_GROUPS", Fn.join(",", groups.valueAsList));
  agentfix.failureFunction?.addEnvironment(
    "TARGET_DEPLOYMENT_GROUPS",
    Fn.join(",", deploymentGroups.valueAsList),
  );
  // The hook of slot i exists only when the list names an i-th group, and names that group; so
  // does its drain (which reads its hook's group name), which must not outlive it.
  agentfix.lifecycleHooks.forEach((hook, i) => {
    hook.autoScalingGroupName = groupSlots.items[i]!;
    if (i === 0) return;
    hook.cfnOptions.condition = groupSlots.own[i - 1]!;
    const drain = agentfix.lifecycleHookDrains[i]?.node.defaultChild as CfnResource | undefined;
    if (drain) drain.cfnOptions.condition = groupSlots.own[i - 1]!;
  });
  stack.templateOptions.metadata = {
    "AWS::CloudFormation::Interface": {
      ParameterGroups: [
        { Label: { default: "Scope" }, Parameters: ["Groups", "DeploymentGroups"] },
        {
          Label: { default: "Agent" },
          Parameters: ["AgentPackage", "AgentVersion", "Schedule", "FailureResult"],
        },
        { Label: { default: "Alarms" }, Parameters: ["AlarmEmail"] },
        { Label: { default: "Release artifacts" }, Parameters: ["ArtifactsBucket", "ArtifactsPrefix"] },
      ],
    },
  };
  return { app, stack };
}

/** Synthesizes the release template; with `zips`, also builds and zips the functions. */
export function buildRelease({ stage = "prod", zips = true, outdir = RELEASE_DIR } = {}): {
  template: Record<string, unknown>;
  functions: string[];
} {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  // Bundled apart from dist/functions (the package's, which `npm pack` rebuilds).
  const bundles = mkdtempSync(join(tmpdir(), "agentfix-release-functions-"));
  const functions = zips ? bundleFunctions(bundles) : [];
  for (const name of functions) {
    execFileSync("zip", ["-q", "-X", "-j", join(outdir, `${name}.zip`), join(bundles, name, "index.mjs")]);
  }
  rmSync(bundles, { recursive: true, force: true });
  const { app, stack } = releaseStack(stage);
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as Record<string, unknown>;
  writeFileSync(join(outdir, RELEASE_TEMPLATE), `${JSON.stringify(template, null, 2)}\n`);
  rmSync(assembly.directory, { recursive: true, force: true });
  return { template, functions };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { stage: { type: "string", default: "prod" } } });
  const started = Date.now();
  const { functions } = buildRelease({ stage: values.stage ?? "prod" });
  console.log(
    `dist/release/${RELEASE_TEMPLATE} and ${functions.map((name) => `dist/release/${name}.zip`).join(", ")} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}
