import { burst } from "./burst.js";
import { chaos } from "./chaos.js";
import { deployFailure } from "./deploy-failure.js";
import { deployFailureHarm } from "./deploy-failure-harm.js";
import { failOpen } from "./fail-open.js";
import { harm } from "./harm.js";
import { morning } from "./morning.js";
import type { Scenario } from "./types.js";

export const SCENARIOS: Record<string, Scenario> = {
  morning,
  "deploy-failure": deployFailure,
  "deploy-failure-harm": deployFailureHarm,
  burst,
  chaos,
  harm,
  "fail-open": failOpen,
};
