/**
 * Runs the project's TypeScript sources directly under Node 20, without a build step:
 * `node --import ./sandbox/register.mjs sandbox/cli.ts`. The hooks in `ts-hooks.mjs` transpile
 * `.ts` files with esbuild (types stripped, nothing bundled), so every module keeps its own URL and a
 * dynamic `import()` of a handler stays lazy, exactly as in the tests.
 */
import { register } from "node:module";

register("./ts-hooks.mjs", import.meta.url);
