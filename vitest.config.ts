import { readFileSync } from "node:fs";
import { defineConfig } from "vitest/config";

// The tests run on the Node the functions run on: the `node` devDependency (the Lambda runtime's
// major), which npm puts first on PATH for `npm test` and `npx vitest`. A bare `vitest` started by
// another Node would test something else, so it stops here.
const manifest = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));
const pinned: string = manifest.devDependencies.node;
if (process.versions.node.split(".")[0] !== pinned.split(".")[0]) {
  throw new Error(
    `The tests run on Node ${pinned} from the lockfile, not on ${process.version} (${process.execPath}): ` +
      "run them with `npm test` or `npx vitest` after `npm ci`.",
  );
}

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: {
      AWS_REGION: "us-east-1",
      STAGE: "test",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      POWERTOOLS_LOG_LEVEL: "SILENT",
      POWERTOOLS_METRICS_DISABLED: "true",
      POWERTOOLS_TRACE_ENABLED: "false",
      SST_TELEMETRY_DISABLED: "1",
      LAUNCH_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-launch",
    },
  },
});
