import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "aws-cdk-lib/aws-lambda";
import { bundleFunctions } from "../scripts/bundle-functions.js";
import type { FunctionCode } from "./service-resources.js";

let bundling = true;
let bundled: string | undefined;

/**
 * Whether the SST app builds the functions as a deploy does (default), or leaves each function's
 * code as an inline placeholder: the template is otherwise the same, and much quicker to produce.
 */
export function setBundling(on: boolean): void {
  bundling = on;
}

/**
 * The code of the SST app's functions: the same bundles the package ships (built by
 * scripts/bundle-functions.ts, `<name>/index.mjs`), built once per process at synth, as SST built
 * them, into a folder of the process's own (CDK copies each into the cloud assembly), so synths in
 * parallel and `npm pack` never write the same files.
 */
export function stageCode(): FunctionCode {
  if (!bundling) return () => Code.fromInline("// built with npm run build:lib at deploy");
  if (!bundled) {
    const directory = mkdtempSync(join(tmpdir(), "agentfix-functions-"));
    process.once("exit", () => rmSync(directory, { recursive: true, force: true }));
    bundleFunctions(directory);
    bundled = directory;
  }
  const directory = bundled;
  return (name) => Code.fromAsset(join(directory, name));
}
