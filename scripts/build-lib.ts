import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { bundleFunctions, FUNCTIONS_OUTDIR, PROJECT_ROOT } from "./bundle-functions.js";

/**
 * `npm run build:lib` (also run by `npm pack`): what the package ships.
 * - dist/functions/<name>/index.mjs: each handler, bundled (scripts/bundle-functions.ts);
 * - dist/lib/index.js: the AgentFix construct (lib/index.ts), one ES module that imports only the
 *   package's dependencies (aws-cdk-lib, constructs, cdk-nag, zod);
 * - dist/lib/index.d.ts (and the declarations it refers to, under dist/): its types.
 */
async function main(): Promise<void> {
  const started = Date.now();
  rmSync(FUNCTIONS_OUTDIR, { recursive: true, force: true });
  rmSync(join(PROJECT_ROOT, "dist", "lib"), { recursive: true, force: true });
  const names = bundleFunctions();
  await build({
    entryPoints: [join(PROJECT_ROOT, "lib", "index.ts")],
    outfile: join(PROJECT_ROOT, "dist", "lib", "index.js"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "warning",
  });
  execFileSync(
    join(PROJECT_ROOT, "node_modules", ".bin", "tsc"),
    ["-p", join(PROJECT_ROOT, "tsconfig.lib.json")],
    { stdio: "inherit" },
  );
  console.log(
    `Built ${names.length} function bundles (${names.join(", ")}) and dist/lib in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
