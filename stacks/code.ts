import { join } from "node:path";
import { Code } from "aws-cdk-lib/aws-lambda";
import { bundleFunctions, FUNCTIONS_OUTDIR } from "../scripts/bundle-functions.js";
import type { FunctionCode } from "./service-resources.js";

let bundling = true;
let bundled = false;

/**
 * Whether the SST app builds the functions as a deploy does (default), or leaves each function's
 * code as an inline placeholder: the template is otherwise the same, and much quicker to produce.
 */
export function setBundling(on: boolean): void {
  bundling = on;
}

/**
 * The code of the SST app's functions: the same pre-built bundles the package ships
 * (`dist/functions/<name>/index.mjs`), built once per process at synth, as SST built them.
 */
export function stageCode(): FunctionCode {
  if (!bundling) return () => Code.fromInline("// built with npm run build:lib at deploy");
  if (!bundled) {
    bundleFunctions();
    bundled = true;
  }
  return (name) => Code.fromAsset(join(FUNCTIONS_OUTDIR, name));
}
