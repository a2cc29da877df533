import type { SSTConfig } from "sst";
import { SERVICE_NAME } from "./functions/core/contract.js";
import { addStacks } from "./stacks/app.js";
import { useStageConfig } from "./stacks/config.js";

/**
 * `npx sst deploy --stage <stage>`. The stage's configuration (stacks/config.ts, documented in
 * docs/configuration.md) is validated here, before anything is synthesized.
 */
export default {
  config(input) {
    const stage = input.stage ?? process.env.SST_STAGE;
    const region =
      (stage ? useStageConfig(stage).region : undefined) ?? process.env.AWS_REGION ?? "us-east-1";
    return { name: SERVICE_NAME, region };
  },
  stacks(app) {
    addStacks(app);
  },
} satisfies SSTConfig;
