/**
 * Runs the project's TypeScript sources directly, without a build step:
 * `node --import ./sandbox/register.mjs sandbox/cli.ts`. The hooks in `ts-hooks.mjs` transpile
 * `.ts` files with esbuild (types stripped, nothing bundled), so every module keeps its own URL and a
 * dynamic `import()` of a handler stays lazy, exactly as in the tests.
 *
 * Through the npm scripts (`npm start`, `npm run replay`, `npm run bench`) `node` is the lockfile's
 * Node 22 (the `node` devDependency, first on the scripts' PATH), the major version of the functions'
 * Lambda runtime.
 */
import { register } from "node:module";

register("./ts-hooks.mjs", import.meta.url);
