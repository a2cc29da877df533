import { defineConfig } from "vitest/config";

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
      // The AWS SDK's notice that its 2027 releases need Node 22, and only that notice: every other
      // warning still shows (sandbox/register.mjs does the same for the command-line entry points).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      LAUNCH_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-launch",
    },
  },
});
