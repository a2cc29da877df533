import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { synthesizeStage } from "./synthesize.js";

/**
 * `npm run synth -- --stage <stage>`: writes each stack's CloudFormation template to
 * dist/templates/<stage>/<Stack>.template.json, offline, and prints the cdk-nag findings left
 * unsuppressed (the run fails when there is an error among them).
 */
async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { stage: { type: "string" }, "no-nag": { type: "boolean", default: false } },
  });
  const stage = values.stage ?? process.env.SST_STAGE;
  if (!stage) {
    console.error("Usage: npm run synth -- --stage <stage> [--no-nag]");
    return 2;
  }
  const started = Date.now();
  const result = await synthesizeStage({ stage, nag: !values["no-nag"] });
  const directory = join("dist", "templates", stage);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  for (const stack of result.stacks) {
    const file = join(directory, `${stack.name}.template.json`);
    writeFileSync(file, `${JSON.stringify(stack.template, null, 2)}\n`);
    console.log(`${file}  (${stack.stackName})`);
  }
  for (const finding of result.nag) console.log(`${finding.level}: ${finding.path}: ${finding.message}`);
  const errors = result.nag.filter((finding) => finding.level === "error").length;
  console.log(
    `Synthesized ${result.stacks.length} stacks for stage "${stage}" in ${result.region} in ${((Date.now() - started) / 1000).toFixed(1)} s; cdk-nag: ${errors} errors, ${result.nag.length - errors} warnings`,
  );
  return errors > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
