// Configuration comes from environment variables, read once when a function's module loads. A bad
// value fails the cold start with one error that names every bad variable, rather than the first
// event that happens to need it.
import * as z from "zod";
import {
  AGENT_PACKAGES,
  AGENT_VERSION_HINT,
  AGENT_VERSION_PATTERN,
  ALL,
  REDEPLOY_POLICIES,
} from "./contract.js";

/** The configuration of a function is missing or invalid; the message names every bad variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const csv = z
  .string()
  .default("")
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean),
  );

/**
 * What the stage names, as the functions receive it (TARGET_GROUPS, TARGET_DEPLOYMENT_GROUPS):
 * - `a,b`: exactly these names;
 * - `*`: every group of the account and Region, said explicitly by the stage (kept as the one entry
 *   `"*"` of the list, so no code ever reads "all" into a list that is merely empty);
 * - empty or unset: nothing is in scope. An empty list never means "everything".
 * `*` stands alone: `*,web` is refused.
 */

const scopeList = (item: z.ZodString) =>
  csv
    .pipe(z.array(z.union([z.literal(ALL), item])))
    .refine((names) => !names.includes(ALL) || names.length === 1, {
      message: `${ALL} stands alone (it means every group), without other names`,
    });

/** True when the list is the explicit `*`: every group (or deployment group) of the account and Region. */
export function coversAll(names: readonly string[]): boolean {
  return names.includes(ALL);
}

/** Whether `name` is in scope of a TARGET_GROUPS / TARGET_DEPLOYMENT_GROUPS list: named, or `*`. Empty: never. */
export function inScope(names: readonly string[], name: string): boolean {
  return coversAll(names) || names.includes(name);
}

const bool = (fallback: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no", ""])
    .default(fallback ? "true" : "false")
    .transform((value) => (value === "" ? fallback : ["true", "1", "yes"].includes(value)));

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((value) => (value.trim() === "" ? fallback : Number(value)))
    .pipe(z.number().int().min(min).max(max));

/** Settings shared by every path that installs or verifies the agent. */
const agentSchema = z.object({
  // The stage the function belongs to: it names the stage's own SSM documents and lifecycle hook.
  STAGE: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,36}$/, "the stage name the stack deployed (1-36 letters, digits or '-')"),
  AGENT_PACKAGE: z.enum(AGENT_PACKAGES).default("AWSCodeDeployAgent"),
  // Empty or "latest" installs the latest published version; anything else pins it.
  AGENT_VERSION: z
    .string()
    .default("")
    .transform((value) => (value.trim() === "latest" ? "" : value.trim()))
    .pipe(z.string().regex(AGENT_VERSION_PATTERN, AGENT_VERSION_HINT)),
  INSTALL_ATTEMPTS: int(2, 1, 10),
  POLL_INTERVAL_MS: int(5_000, 1, 600_000),
  DRY_RUN: bool(false),
  // DynamoDB table holding short leases, so two concurrent invocations never work on one instance
  // (two concurrent installs of one package fail on the instance). Empty disables leasing.
  LEASE_TABLE: z.string().default(""),
  // Seconds kept in reserve before the Lambda deadline to report, heartbeat and release leases.
  TIME_RESERVE_SECONDS: int(20, 1, 300),
});

const launchSchema = agentSchema.extend({
  // The Auto Scaling groups in scope: names, or `*` for every group; empty: none (see ALL).
  TARGET_GROUPS: scopeList(z.string().min(1)),
  LIFECYCLE_HOOK_NAME: z.string().default(""),
  // The stage's hook name of the previous release, still ours while groups that manage their own
  // hook move to the new name (docs/deploy.md).
  PREVIOUS_LIFECYCLE_HOOK_NAME: z.string().default(""),
  // Fail open: an instance whose agent could not be installed or verified still enters service
  // (CodeDeploy's own hook judges it by its deployment). ABANDON is the stage's explicit choice.
  FAILURE_RESULT: z.enum(["ABANDON", "CONTINUE"]).default("CONTINUE"),
  // Longest wait for SSM registration before the instance gets the failure result.
  REGISTRATION_TIMEOUT_SECONDS: int(600, 30, 7_200),
  // The queue the function reads; unfinished records are handed back to it after RESUME_AFTER_SECONDS
  // instead of waiting out the visibility timeout. Empty: leave redelivery to the visibility timeout.
  LAUNCH_QUEUE_URL: z.string().default(""),
  RESUME_AFTER_SECONDS: int(10, 0, 900),
  // "events": take the next step and return; SSM's command-invocation events (through the launch
  // queue) say when an install ended. "polling": work on the batch until it is done or out of time.
  LAUNCH_COMPLETION: z.enum(["events", "polling"]).default("events"),
  // Events: seconds between looks at an instance not yet registered with SSM (docs/configuration.md).
  REGISTRATION_POLL_SECONDS: int(10, 1, 300),
  // Events: seconds after which an install whose end event has not come is looked up in SSM.
  COMMAND_OVERDUE_SECONDS: int(60, 5, 900),
});

const failureSchema = agentSchema.extend({
  // application/deployment-group pairs in scope, or `*` for every one; empty: none (see ALL).
  TARGET_DEPLOYMENT_GROUPS: scopeList(
    z.string().regex(/^[^/\s*]+\/[^/\s*]+$/, "application/deployment-group pairs"),
  ),
  MAX_REDEPLOYS: int(1, 0, 10),
  REDEPLOY_WHEN: z.enum(REDEPLOY_POLICIES).default("agent-changed"),
  REGISTRATION_TIMEOUT_SECONDS: int(60, 0, 7_200),
  // The queue that brings back a failure the function cannot act on yet (another deployment runs in
  // the group, or an automatic rollback may still be created). Empty: the failure is rethrown and
  // left to Lambda's asynchronous retries.
  FAILURE_RETRY_QUEUE_URL: z.string().default(""),
  // How long a failure waits for its busy deployment group before it is given up (GAVE_UP).
  BUSY_GROUP_RETRY_HOURS: int(4, 1, 48),
  // How long after a failure CodeDeploy is given to create the automatic rollback the deployment
  // asked for, before agents are touched.
  ROLLBACK_WAIT_SECONDS: int(120, 0, 3_600),
});

const sweepSchema = z.object({
  // Names, or `*` for every group; empty: the sweep looks at no group (see ALL).
  TARGET_GROUPS: scopeList(z.string().min(1)),
  LIFECYCLE_HOOK_NAME: z.string().min(1, "the name of the launch lifecycle hook the service owns"),
  PREVIOUS_LIFECYCLE_HOOK_NAME: z.string().default(""),
  LAUNCH_QUEUE_URL: z.string().url(),
  STALE_AFTER_SECONDS: int(300, 15, 172_800),
  DRY_RUN: bool(false),
  // The launch records of event completion; the sweep leaves the launches they show in hand alone.
  LEASE_TABLE: z.string().default(""),
});

export type LaunchConfig = z.infer<typeof launchSchema>;
export type FailureConfig = z.infer<typeof failureSchema>;
export type SweepConfig = z.infer<typeof sweepSchema>;
export type AgentConfig = z.infer<typeof agentSchema>;

function load<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv, what: string): z.infer<T> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
  throw new ConfigError(`Invalid ${what} configuration: ${problems.join("; ")}`);
}

export const loadLaunchConfig = (env: NodeJS.ProcessEnv = process.env): LaunchConfig =>
  load(launchSchema, env, "launch");
export const loadFailureConfig = (env: NodeJS.ProcessEnv = process.env): FailureConfig =>
  load(failureSchema, env, "deployment-failure");
export const loadSweepConfig = (env: NodeJS.ProcessEnv = process.env): SweepConfig =>
  load(sweepSchema, env, "sweep");

/** Defaults for tests and the sandbox: every value as if no variable were set. */
export const defaultLaunchConfig = (overrides: Partial<LaunchConfig> = {}): LaunchConfig => ({
  ...loadLaunchConfig({ STAGE: "test" }),
  ...overrides,
});
export const defaultFailureConfig = (overrides: Partial<FailureConfig> = {}): FailureConfig => ({
  ...loadFailureConfig({ STAGE: "test" }),
  ...overrides,
});
