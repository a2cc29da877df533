/**
 * Module customization hooks (https://nodejs.org/docs/latest-v22.x/api/module.html#customization-hooks)
 * for the project's TypeScript sources. Sources import siblings with the `.js` extension (TypeScript's
 * ESM convention), so a `.js` specifier that does not exist next to its importer resolves to the `.ts`
 * file. Only files outside node_modules are transpiled.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { transform } from "esbuild";

const isProjectFile = (url) => url.startsWith("file:") && !url.includes("/node_modules/");

export async function resolve(specifier, context, nextResolve) {
  const local = /^(\.{1,2}\/|\/|file:)/.test(specifier);
  if (local && specifier.endsWith(".js") && context.parentURL && isProjectFile(context.parentURL)) {
    const candidate = new URL(specifier.replace(/\.js$/, ".ts"), context.parentURL);
    const asJs = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(asJs)) && existsSync(fileURLToPath(candidate))) {
      return nextResolve(candidate.href, context);
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  const path = url.split("?")[0];
  if (isProjectFile(url) && path.endsWith(".ts")) {
    const source = await readFile(fileURLToPath(path), "utf8");
    const result = await transform(source, {
      loader: "ts",
      format: "esm",
      target: "node22",
      sourcemap: "inline",
      sourcefile: fileURLToPath(path),
    });
    return { format: "module", source: result.code, shortCircuit: true };
  }
  return nextLoad(url, context);
}
