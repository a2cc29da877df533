/**
 * Runs the project's TypeScript sources directly under Node 20, without a build step:
 * `node --import ./sandbox/register.mjs sandbox/cli.ts`. The hooks in `ts-hooks.mjs` transpile
 * `.ts` files with esbuild (types stripped, nothing bundled), so every module keeps its own URL and a
 * dynamic `import()` of a handler stays lazy, exactly as in the tests.
 *
 * It also turns off the AWS SDK's notice that its releases from 2027 need Node 22: the SDK emits it
 * as a generic Node warning (so `--disable-warning` cannot single it out) and reads this variable
 * before emitting it. Set here, before any SDK client is created, it covers every entry point run
 * this way; every other warning still shows.
 */
import { register } from "node:module";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

register("./ts-hooks.mjs", import.meta.url);
