import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

/**
 * The project root: the nearest folder above this module with the handlers (this module may run
 * from scripts/ or bundled into dist/ or SST's config bundle).
 */
function projectRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(directory, "functions", "launch.ts"))) {
    const parent = resolve(directory, "..");
    if (parent === directory) return process.cwd();
    directory = parent;
  }
  return directory;
}

export const PROJECT_ROOT = projectRoot();

/** Where the pre-built handler bundles go: `dist/functions/<name>/index.mjs`. */
export const FUNCTIONS_OUTDIR = join(PROJECT_ROOT, "dist", "functions");

/** The handler entry points: every `functions/*.ts`. */
export function handlerNames(root = PROJECT_ROOT): string[] {
  return readdirSync(join(root, "functions"))
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file) => file.slice(0, -".ts".length))
    .sort();
}

/**
 * Bundles each handler as Lambda runs it (ESM, Node.js 22, the AWS SDK bundled as SST bundled it,
 * minified with names kept), one folder per function, so the construct takes its code from a folder
 * (`Code.fromAsset`) and a user's synth runs no esbuild.
 */
export function bundleFunctions(outdir = FUNCTIONS_OUTDIR): string[] {
  const names = handlerNames();
  for (const name of names) {
    buildSync({
      entryPoints: [join(PROJECT_ROOT, "functions", `${name}.ts`)],
      outfile: join(outdir, name, "index.mjs"),
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      mainFields: ["module", "main"],
      minify: true,
      keepNames: true,
      sourcemap: false,
      logLevel: "warning",
      // ESM has no require/__dirname: the shims SST's bundler adds, for CommonJS dependencies.
      banner: {
        js: [
          'import { createRequire as topLevelCreateRequire } from "module";',
          "const require = topLevelCreateRequire(import.meta.url);",
          'import { fileURLToPath as topLevelFileUrlToPath } from "url";',
          'import { dirname as topLevelDirname } from "path";',
          "const __filename = topLevelFileUrlToPath(import.meta.url);",
          "const __dirname = topLevelDirname(__filename);",
        ].join("\n"),
      },
    });
  }
  return names;
}
