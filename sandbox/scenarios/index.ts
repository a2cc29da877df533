import { burst } from "./burst.js";
import { chaos } from "./chaos.js";
import { deployFailure } from "./deploy-failure.js";
import { morning } from "./morning.js";
import type { Scenario } from "./types.js";

export const SCENARIOS: Record<string, Scenario> = {
  morning,
  "deploy-failure": deployFailure,
  burst,
  chaos,
};
