import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aspects, Aws } from "aws-cdk-lib";
import type { CloudFormationStackArtifact } from "aws-cdk-lib/cx-api";
import { AwsSolutionsChecks } from "cdk-nag";
import { App } from "sst/constructs";
import { initProject } from "sst/project.js";
import { SERVICE_NAME } from "../functions/core/contract.js";
import { addStacks } from "../stacks/app.js";
import { setBundling } from "../stacks/code.js";
import { useStageConfig } from "../stacks/config.js";

/**
 * Synthesizes every stack of one stage offline: no AWS credentials, no network. It follows what
 * `sst deploy` does up to the CloudFormation templates (SST loads sst.config.ts, builds the
 * functions with esbuild, CDK synthesizes), with two differences: the account is left as
 * `${AWS::AccountId}` rather than looked up with STS, and SST's sourcemap uploader (which needs
 * the bootstrap bucket) is left out, as in SST's own test mode.
 */

export interface NagFinding {
  stack: string;
  path: string;
  level: "error" | "warning";
  message: string;
}

export interface SynthesizedStack {
  /** The stack function's name, e.g. "LaunchPath". */
  name: string;
  stackName: string;
  template: Record<string, unknown>;
}

export interface SynthesizedStage {
  stage: string;
  region: string;
  stacks: SynthesizedStack[];
  /** cdk-nag AwsSolutions findings left after the suppressions in the stacks. */
  nag: NagFinding[];
}

export interface SynthesizeOptions {
  stage: string;
  /** Run the cdk-nag AwsSolutions checks (default true). */
  nag?: boolean;
  /**
   * Build the functions with esbuild, as a deploy does (default true). Without it SST leaves each
   * function's code as an inline placeholder: the template is otherwise the same, and much
   * quicker to produce, which is what tests of a second or third stage need.
   */
  bundle?: boolean;
}

export async function synthesizeStage({
  stage,
  nag = true,
  bundle = true,
}: SynthesizeOptions): Promise<SynthesizedStage> {
  // SST's test mode: skips the STS and bootstrap lookups that need an AWS account.
  process.env.NODE_ENV = "test";
  process.env.SST_TELEMETRY_DISABLED ??= "1";
  await initProject({ stage });
  const config = useStageConfig(stage);
  const region = config.region ?? process.env.AWS_REGION ?? "us-east-1";
  const outdir = mkdtempSync(join(tmpdir(), `agentfix-cdk-${stage}-`));
  try {
    const app = new App(
      {
        mode: "deploy",
        stage,
        name: SERVICE_NAME,
        region,
        account: Aws.ACCOUNT_ID,
      },
      { outdir },
    );
    if (nag) Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
    setBundling(bundle);
    addStacks(app);
    await app.finish();
    const assembly = app.synth();
    const prefix = `${stage}-${SERVICE_NAME}-`;
    const stacks: SynthesizedStack[] = [];
    const findings: NagFinding[] = [];
    for (const artifact of assembly.stacks as CloudFormationStackArtifact[]) {
      const name = artifact.stackName.startsWith(prefix)
        ? artifact.stackName.slice(prefix.length)
        : artifact.stackName;
      stacks.push({ name, stackName: artifact.stackName, template: artifact.template });
      for (const message of artifact.messages) {
        if (message.level !== "error" && message.level !== "warning") continue;
        const text = String(message.entry.data ?? "");
        if (!text.includes("AwsSolutions-")) continue;
        findings.push({ stack: name, path: message.id, level: message.level, message: text });
      }
    }
    return { stage, region, stacks, nag: findings };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
