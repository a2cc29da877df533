import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import {
  AGENT_PACKAGES,
  AGENT_VERSION_HINT,
  ALL,
  GROUP_TAG,
  REDEPLOY_POLICIES,
} from "../functions/core/contract.js";
import {
  allGroupsConflicts,
  defaultHookName,
  dryRunProblems,
  isPinnedStage,
  previousDefaultHookName,
  resolveAgentVersion,
  type StageScope,
  sharedGroups,
} from "./stage-policy.js";

/**
 * Deployment configuration, per stage, in one typed place. It is validated when the stacks are
 * synthesized: a bad value stops `sst deploy` / `npm run synth` with one error that names every bad
 * field, before anything reaches CloudFormation.
 *
 * Sources, later ones winning (objects merge field by field, arrays are replaced):
 * 1. the defaults below (production and UAT stages pin the agent version);
 * 2. `agentfix.config.json` in the project root (or the file named by AGENTFIX_CONFIG_FILE):
 *    `{"default": {...}, "<stage>": {...}}`;
 * 3. the AGENTFIX_CONFIG environment variable: a JSON object for the stage being deployed.
 * Every field is documented in docs/configuration.md.
 */

export const CONFIG_FILE_NAME = "agentfix.config.json";

/** Retention periods CloudWatch Logs accepts, in days. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export class StageConfigError extends Error {
  override name = "StageConfigError";
  constructor(
    message: string,
    readonly fields: string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** A function's timeout (Lambda allows up to 900 s) and memory (128-10,240 MB), with its defaults. */
const functionSize = (defaults: { minTimeout: number; timeout: number; memory: number }) => ({
  timeoutSeconds: int(defaults.minTimeout, 900).default(defaults.timeout),
  memoryMb: int(128, 10_240).default(defaults.memory),
});

// Group names end up comma-joined in TARGET_GROUPS, so a comma cannot be part of one.
const groupName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^,\s][^,]*$/, "an Auto Scaling group name (no commas, no leading blank)");
const deploymentGroupPair = z
  .string()
  .regex(
    /^([^/\s,]+\/[^/\s,]+|\*)$/,
    'an application/deployment-group pair such as billing/billing-prod, or "*" for every deployment group',
  );
/** `"*"` (every group of the account and Region, said on purpose) stands alone in its list. */
const scopeList = (item: z.ZodType<string, string>) =>
  z
    .array(item)
    .default([])
    .refine((names: string[]) => !names.includes(ALL) || names.length === 1, {
      message: '"*" (every group of the account and Region) stands alone, without other names',
    });
/**
 * A pin names a full version, X.Y.Z (Distributor's version names): "1.8" or "1" is refused, since
 * Distributor would not find it and the launch path would verify against the wrong version.
 */
export const FULL_VERSION = /^(\d+\.\d+\.\d+(\.\d+)?)?$/;
const agentVersion = z
  .string()
  .trim()
  .transform((value) => (value === "latest" ? "" : value))
  // Stricter than the functions' AGENT_VERSION_PATTERN: a pin names all three parts.
  .pipe(
    z
      .string()
      .regex(
        FULL_VERSION,
        `a full version X.Y.Z such as 1.8.1 (not "1.8" or "1"), or "latest" (${AGENT_VERSION_HINT})`,
      ),
  );
const result = z.enum(["ABANDON", "CONTINUE"]);
// `rate(5 minutes)` or a six-field `cron(...)`: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
const scheduleExpression = z
  .string()
  .regex(
    /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$/,
    "rate(<n> minutes|hours|days) or cron(<6 fields>)",
  );
// State Manager takes cron(...) or rate(...): https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html
const associationSchedule = z
  .string()
  .regex(
    /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){4,5}\))$/,
    "cron(<fields>) or rate(<n> minutes|hours|days)",
  );
/**
 * A percentage of the association's targets. Percentages (not absolute counts) keep the share of
 * every group that reinstalls at once bounded however large the fleet grows.
 */
const percentage = (max: number) =>
  z.string().refine((value) => {
    if (!/^\d{1,3}%$/.test(value)) return false;
    const number = Number(value.slice(0, -1));
    return number >= 1 && number <= max;
  }, `a percentage between 1% and ${max}%, such as 10%`);

const agentSchema = z.strictObject({
  /** Distributor package: AWSCodeDeployAgent (1.x) or AWSCodeDeployAgentV2 (2.x). */
  package: z.enum(AGENT_PACKAGES).default("AWSCodeDeployAgent"),
  /** Pinned version, or "" (or "latest") for the latest published version. Default: per stage. */
  version: agentVersion.optional(),
  installAttempts: int(1, 10).default(2),
  pollIntervalMs: int(1_000, 600_000).default(5_000),
});

const hookSchema = z.strictObject({
  /** Default: the stage's own, agentfix-<stage>-install-codedeploy-agent. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9\-_/]{1,255}$/, "1-255 letters, digits, '-', '_' or '/'")
    .optional(),
  /** "stack": this stack creates the hook on each group; "group": the group's own IaC does. */
  managedBy: z.enum(["stack", "group"]).optional(),
  heartbeatTimeoutSeconds: int(30, 7_200).default(900),
  /**
   * Default: CONTINUE (fail open: a timed-out hook never terminates capacity for our fault).
   * ABANDON is opt-in, and refused in a dry run.
   */
  defaultResult: result.optional(),
});

export const LAUNCH_COMPLETIONS = ["events", "polling"] as const;

/**
 * Launch concurrency per stage. Lambda's default quota is 1,000 concurrent executions per account
 * and Region, of which 100 must stay unreserved: 900 can be reserved. 20 per stage lets production,
 * UAT and a dozen personal stages deploy side by side and still leaves most of the pool unreserved.
 */
export const DEFAULT_LAUNCH_CONCURRENCY = 20;
/** Lambda's default concurrency quota per account and Region. */
export const ACCOUNT_CONCURRENCY_QUOTA = 1_000;
/** The share of that quota one stage may reserve without a warning: 10%, 100 executions. */
export const STAGE_RESERVED_SHARE = 0.1;

const launchSchema = z.strictObject({
  /** Default CONTINUE (fail open); ABANDON is opt-in, and refused in a dry run. */
  failureResult: result.optional(),
  registrationTimeoutSeconds: int(30, 7_200).default(600),
  /**
   * "events": each invocation takes the next step and returns; SSM's command-invocation events say
   * when an install ended, and polling is only the fallback for an event that is overdue.
   * "polling": one invocation registers, installs and verifies, polling SSM until it is done.
   */
  completion: z.enum(LAUNCH_COMPLETIONS).default("events"),
  /**
   * Default 20 s with event completion (an invocation takes a step and returns, in a second or two,
   * or after up to half its time retrying throttled completions: a cut-off one's messages come back
   * 30 s after it started, and the steps it stored are its own only that long), 300 s with polling
   * (long enough for a slow registration, an
   * install and a verification in one invocation).
   */
  timeoutSeconds: int(15, 900).optional(),
  memoryMb: int(128, 10_240).default(512),
  /** Event completion: seconds between looks at an instance that has not registered with SSM yet. */
  registrationPollSeconds: int(2, 300).default(10),
  /** Event completion: seconds after which an install whose end event has not come is looked up. */
  commandOverdueSeconds: int(15, 900).default(60),
  /**
   * Visibility timeout of the launch queue. Default: twice the function timeout. It only decides
   * when a crashed invocation's messages come back: unfinished instances are handed back after
   * resumeAfterSeconds, and the event source's maximum concurrency keeps the function from being
   * throttled (the case behind the usual six-times advice).
   */
  visibilityTimeoutSeconds: int(30, 43_200).optional(),
  /** Seconds after which an instance left unfinished by one invocation is picked up by the next. */
  resumeAfterSeconds: int(0, 900).default(10),
  batchSize: int(1, 50).default(50),
  /** Default: 2 s with event completion (every step waits for it), 5 s with polling. */
  maxBatchingWindowSeconds: int(0, 300).optional(),
  // A morning scale-out of 1,000 instances is 20 batches of 50 at once; each must start at once, or
  // CodeDeploy's own launch deployment gives up waiting for an agent (5 minutes by the limits page).
  // 20 batches of 50 are 1,000 instances at once, and 20 reserved per stage lets many stages share
  // an account's default quota (docs/configuration.md has the arithmetic).
  maxConcurrency: int(2, 1_000).default(DEFAULT_LAUNCH_CONCURRENCY),
  /**
   * Concurrency reserved for the launch function; default launch.maxConcurrency. At least the event
   * source's maximum concurrency, the function is never throttled when the account's pool runs dry,
   * so a message is received again only after the visibility timeout: never by two invocations at
   * once, never held past the hook. 0 reserves none (then the account's pool must always have room).
   */
  reservedConcurrency: int(0, 1_000).optional(),
  /**
   * Receives of a launch message before it goes to the dead-letter queue. Default: 100 with event
   * completion (a message comes back every registrationPollSeconds until its instance registers),
   * 10 with polling.
   */
  maxReceiveCount: int(1, 1_000).optional(),
});

const failureSchema = z.strictObject({
  maxRedeploys: int(0, 10).default(1),
  redeployWhen: z.enum(REDEPLOY_POLICIES).default("agent-changed"),
  registrationTimeoutSeconds: int(0, 7_200).default(60),
  ...functionSize({ minTimeout: 60, timeout: 900, memory: 512 }),
  /** Lambda asynchronous retries after a function error (0-2). */
  retryAttempts: int(0, 2).default(2),
  /** How long Lambda and EventBridge keep retrying an event (60 s - 6 h). */
  maxEventAgeSeconds: int(60, 21_600).default(3_600),
  /**
   * Hours a failure waits, through the failure retry queue, while other deployments run in its group
   * (an in-place deployment may run for 8 hours); then it is given up (GAVE_UP, alarmed).
   */
  busyGroupRetryHours: int(1, 48).default(4),
  /** Seconds after a failure CodeDeploy is given to create the automatic rollback the deployment asked for. */
  rollbackWaitSeconds: int(0, 3_600).default(120),
});

const sweepSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Default: rate(1 minute) with event completion, rate(5 minutes) with polling. */
  schedule: scheduleExpression.optional(),
  /** Default: 20 s with event completion (a launch in hand has a record), 300 s with polling. */
  staleAfterSeconds: int(15, 172_800).optional(),
  ...functionSize({ minTimeout: 10, timeout: 60, memory: 256 }),
});

const associationTargetSchema = z.discriminatedUnion("key", [
  z.strictObject({ key: z.literal("tag:Name"), values: z.array(z.string().min(1)).min(1).max(50) }),
  z.strictObject({
    key: z.literal("tag:aws:autoscaling:groupName"),
    values: z.array(groupName).min(1).max(50),
  }),
  z.strictObject({
    key: z.literal("InstanceIds"),
    values: z
      .array(z.string().regex(/^(i|mi)-[0-9a-f]{8,17}$/, "an instance id"))
      .min(1)
      .max(50),
  }),
]);

const associationSchema = z.strictObject({
  /** Default: true, except in a dry run (which creates nothing that acts). */
  enabled: z.boolean().optional(),
  schedule: associationSchedule.default("cron(0 3 ? * * *)"),
  /**
   * Run only at the scheduled times, not as soon as the association is created or an instance
   * starts matching it: a new instance gets its agent from the launch hook, and a second install
   * racing that one fails on the instance.
   */
  applyOnlyAtCronInterval: z.boolean().default(true),
  /** Default: the instances of the groups in scope; with no group listed, no association is created. */
  target: associationTargetSchema.optional(),
  complianceSeverity: z.enum(["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"]).default("HIGH"),
  maxConcurrency: percentage(50).default("10%"),
  maxErrors: percentage(100).default("10%"),
});

const stageConfigSchema = z.strictObject({
  region: z
    .string()
    .regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/, "an AWS Region such as eu-west-1")
    .optional(),
  /**
   * The account the stage deploys to, when the file says: the "*" check then compares stages by
   * account and Region, not by Region alone. Informational otherwise (the credentials decide).
   */
  account: z
    .string()
    .regex(/^\d{12}$/, "a 12-digit AWS account id")
    .optional(),
  /**
   * Auto Scaling groups in scope. Empty: none, and no launch path (no launch function, queue,
   * hooks or sweep). `["*"]`: every group of the account and Region, said on purpose.
   */
  groups: scopeList(groupName),
  /**
   * CodeDeploy application/deployment-group pairs in scope. Empty: none, and no failure path.
   * `["*"]`: every deployment group of the account and Region.
   */
  deploymentGroups: scopeList(deploymentGroupPair),
  dryRun: z.boolean().default(false),
  /**
   * X-Ray tracing of the functions (active tracing, Powertools' tracer). Off, a cold start neither
   * loads nor evaluates the tracer and its X-Ray SDK.
   */
  tracing: z.boolean().default(true),
  logLevel: z.enum(["DEBUG", "INFO", "WARN", "ERROR"]).default("INFO"),
  logRetentionDays: z
    .number()
    .refine((days) => (LOG_RETENTION_DAYS as readonly number[]).includes(days), {
      message: `one of ${LOG_RETENTION_DAYS.join(", ")}`,
    })
    .default(30),
  timeReserveSeconds: int(1, 300).default(20),
  agent: agentSchema.prefault({}),
  hook: hookSchema.prefault({}),
  launch: launchSchema.prefault({}),
  failure: failureSchema.prefault({}),
  sweep: sweepSchema.prefault({}),
  association: associationSchema.prefault({}),
  leaseTable: z.strictObject({ pointInTimeRecovery: z.boolean().default(false) }).prefault({}),
  alarms: z
    .strictObject({
      email: z.email().optional(),
      topicArn: z
        .string()
        .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, "an SNS topic ARN")
        .optional(),
    })
    .prefault({}),
  testEvents: z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * The Lambda console creates `lambda-testevent-schemas` the first time anyone saves a
       * shareable test event; the stack creates it when it is missing and leaves it in place.
       */
      ensureRegistry: z.boolean().default(true),
    })
    .prefault({}),
});

type ParsedStageConfig = z.infer<typeof stageConfigSchema>;
export type StageConfigInput = z.input<typeof stageConfigSchema>;

/** The validated configuration of one stage, with every default and derived value filled in. */
export interface StageConfig
  extends Omit<ParsedStageConfig, "agent" | "hook" | "launch" | "sweep" | "association"> {
  stage: string;
  /** What the stage deploys: each path only when the stage names what it acts on. */
  paths: {
    /** `groups` named (or "*"): launch function, queues, rules, hooks, sweep. */
    launch: boolean;
    /** `deploymentGroups` named (or "*"): failure function, rule, retry and dead-letter queues. */
    failure: boolean;
  };
  agent: ParsedStageConfig["agent"] & { version: string };
  hook: ParsedStageConfig["hook"] & {
    name: string;
    /**
     * The previous release's default name, still recognised when the stage uses the default name
     * (a group-managed hook may still carry it); undefined with a name of the stage's own.
     */
    previousName?: string;
    managedBy: "stack" | "group";
    defaultResult: "ABANDON" | "CONTINUE";
  };
  launch: ParsedStageConfig["launch"] & {
    failureResult: "ABANDON" | "CONTINUE";
    timeoutSeconds: number;
    maxReceiveCount: number;
    maxBatchingWindowSeconds: number;
    visibilityTimeoutSeconds: number;
    reservedConcurrency: number;
  };
  sweep: ParsedStageConfig["sweep"] & { schedule: string; staleAfterSeconds: number };
  association: Omit<ParsedStageConfig["association"], "target" | "enabled"> & {
    enabled: boolean;
    /** Whom the association reaches; undefined when nothing is configured (then none is created). */
    target?: { key: "tag:Name" | "tag:aws:autoscaling:groupName" | "InstanceIds"; values: string[] };
  };
  /** Choices that are allowed but deserve a look, printed when the stage is synthesized. */
  warnings: string[];
}

/** Validates one stage's configuration and fills in the defaults that depend on the stage or other fields. */
export function parseStageConfig(
  stage: string,
  input: unknown,
  source = "configuration",
  otherStages: ReadonlyMap<string, StageScope> = new Map(),
): StageConfig {
  const parsed = stageConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw configError(
      stage,
      source,
      parsed.error.issues.map((issue) => ({
        path: issue.path.join(".") || "(root)",
        message: issue.message,
      })),
    );
  }
  const config = parsed.data;
  const { version, problems } = resolveAgentVersion(stage, config.agent);
  const warnings: string[] = [];
  problems.push(...sharedGroups(stage, config.groups, otherStages));
  const region = config.region ?? process.env.AWS_REGION ?? "us-east-1";
  problems.push(
    ...allGroupsConflicts(
      stage,
      {
        groups: config.groups,
        deploymentGroups: config.deploymentGroups,
        region,
        ...(config.account ? { account: config.account } : {}),
      },
      otherStages,
    ),
  );
  const paths = { launch: config.groups.length > 0, failure: config.deploymentGroups.length > 0 };
  const allGroups = config.groups.includes(ALL);
  // The stack can only put a hook on groups it knows by name.
  const managedBy = config.hook.managedBy ?? (paths.launch && !allGroups ? "stack" : "group");
  const events = config.launch.completion === "events";
  const launchTimeoutSeconds = config.launch.timeoutSeconds ?? (events ? 20 : 300);
  const maxBatchingWindowSeconds = config.launch.maxBatchingWindowSeconds ?? (events ? 2 : 5);
  // Event completion: a cut-off invocation's messages come back 10 s after its timeout.
  const visibilityTimeoutSeconds =
    config.launch.visibilityTimeoutSeconds ?? (events ? launchTimeoutSeconds + 10 : 2 * launchTimeoutSeconds);
  const sweep = {
    ...config.sweep,
    schedule: config.sweep.schedule ?? (events ? "rate(1 minute)" : "rate(5 minutes)"),
    staleAfterSeconds: config.sweep.staleAfterSeconds ?? (events ? 20 : 300),
  };
  const reservedConcurrency = config.launch.reservedConcurrency ?? config.launch.maxConcurrency;
  const target = config.association.target ?? defaultAssociationTarget(config.groups);
  const associationEnabled = (config.association.enabled ?? !config.dryRun) && target !== undefined;
  problems.push(
    ...dryRunProblems({
      dryRun: config.dryRun,
      hookDefaultResult: config.hook.defaultResult,
      launchFailureResult: config.launch.failureResult,
      associationEnabled: config.association.enabled,
    }),
  );
  if (isPinnedStage(stage) && (config.groups.length === 0 || allGroups)) {
    problems.push({
      path: "groups",
      message: `stage "${stage}" pins the agent and must name its Auto Scaling groups (not "*", which reaches every group of the account and Region, EKS, ECS and EMR nodes included)`,
    });
  }
  if (!paths.launch && !paths.failure && config.association.target === undefined) {
    problems.push({
      path: "groups",
      message:
        'the stage names no groups, no deploymentGroups and no association.target, so it would deploy nothing that acts: name what it acts on (or "*" on purpose for every group)',
    });
  }
  if ((config.association.enabled ?? true) && !config.dryRun && target === undefined && paths.launch) {
    warnings.push(
      'association: groups is "*" and no association.target is configured, so no State Manager association is created (it would reach every Auto Scaling instance of the account, EKS, ECS and EMR nodes included)',
    );
  }
  // State Manager refuses a rate() schedule with ApplyOnlyAtCronInterval at CreateAssociation.
  if (
    associationEnabled &&
    config.association.applyOnlyAtCronInterval &&
    config.association.schedule.startsWith("rate(")
  ) {
    problems.push({
      path: "association.schedule",
      message: `${config.association.schedule} with association.applyOnlyAtCronInterval true (the default) is refused by State Manager: use a cron(...) schedule, or set association.applyOnlyAtCronInterval to false`,
    });
  }
  if (reservedConcurrency > 0 && reservedConcurrency < config.launch.maxConcurrency) {
    problems.push({
      path: "launch.reservedConcurrency",
      message: `must be 0 or at least launch.maxConcurrency (${config.launch.maxConcurrency}): a throttled launch function leaves messages to reappear while their instances wait on the hook`,
    });
  }
  warnings.push(...scopeMismatch(config.groups, config.deploymentGroups));
  const reservedShare = ACCOUNT_CONCURRENCY_QUOTA * STAGE_RESERVED_SHARE;
  if (paths.launch && reservedConcurrency > reservedShare) {
    warnings.push(
      `launch.reservedConcurrency ${reservedConcurrency} is more than this stage's share of the account's default concurrency quota (${reservedShare} of ${ACCOUNT_CONCURRENCY_QUOTA}, of which 100 must stay unreserved): other stages and functions of the account may not fit; see docs/configuration.md`,
    );
  }
  if (paths.launch && reservedConcurrency === 0) {
    warnings.push(
      "launch.reservedConcurrency is 0: when the account's concurrency runs out, throttled batches wait for the queue's visibility timeout",
    );
  }
  // Function names are agentfix-<stage>-deployment-failure at the longest, and Lambda allows 64 characters.
  if (!/^[A-Za-z0-9-]{1,36}$/.test(stage)) {
    problems.push({ path: "(stage)", message: "a stage name is 1-36 letters, digits or '-'" });
  }
  if (managedBy === "stack" && (!paths.launch || allGroups)) {
    problems.push({
      path: "hook.managedBy",
      message:
        'the stack can create the hook only on groups listed by name in "groups"; list them or set "group"',
    });
  }
  if (visibilityTimeoutSeconds <= launchTimeoutSeconds) {
    problems.push({
      path: "launch.visibilityTimeoutSeconds",
      message: `must exceed launch.timeoutSeconds (${launchTimeoutSeconds}), or SQS redelivers a batch while it is still being worked on`,
    });
  }
  // A pending instance is heartbeated before the invocation ends and comes back after the visibility
  // timeout: it must come back before that heartbeat runs out, or the hook's default result applies.
  if (visibilityTimeoutSeconds + maxBatchingWindowSeconds >= config.hook.heartbeatTimeoutSeconds) {
    problems.push({
      path: "launch.visibilityTimeoutSeconds",
      message: `${visibilityTimeoutSeconds} s plus the ${maxBatchingWindowSeconds} s batching window must stay below hook.heartbeatTimeoutSeconds (${config.hook.heartbeatTimeoutSeconds}); lower launch.timeoutSeconds or raise the heartbeat timeout`,
    });
  }
  // Lambda reads more than 10 messages per batch from a standard queue only with a batching window:
  // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
  if (config.launch.batchSize > 10 && maxBatchingWindowSeconds < 1) {
    problems.push({
      path: "launch.maxBatchingWindowSeconds",
      message: "must be at least 1 when launch.batchSize is above 10",
    });
  }
  if (config.launch.registrationTimeoutSeconds >= config.hook.heartbeatTimeoutSeconds * 100) {
    problems.push({
      path: "launch.registrationTimeoutSeconds",
      message: "must stay below the hook's global timeout (100 x the heartbeat timeout)",
    });
  }
  if (sweep.staleAfterSeconds >= config.hook.heartbeatTimeoutSeconds) {
    problems.push({
      path: "sweep.staleAfterSeconds",
      message: `must stay below hook.heartbeatTimeoutSeconds (${config.hook.heartbeatTimeoutSeconds}), or a stranded instance times out before the sweep picks it up`,
    });
  }
  if (problems.length > 0) throw configError(stage, source, problems);

  return {
    ...config,
    stage,
    paths,
    agent: { ...config.agent, version },
    hook: {
      ...config.hook,
      name: config.hook.name ?? defaultHookName(stage),
      ...(config.hook.name === undefined ? { previousName: previousDefaultHookName(stage) } : {}),
      managedBy,
      // Fail open; a dry run never abandons (an explicit ABANDON is refused above).
      defaultResult: config.dryRun ? "CONTINUE" : (config.hook.defaultResult ?? "CONTINUE"),
    },
    launch: {
      ...config.launch,
      failureResult: config.dryRun ? "CONTINUE" : (config.launch.failureResult ?? "CONTINUE"),
      timeoutSeconds: launchTimeoutSeconds,
      maxBatchingWindowSeconds,
      visibilityTimeoutSeconds,
      reservedConcurrency,
      maxReceiveCount: config.launch.maxReceiveCount ?? (events ? 100 : 10),
    },
    sweep,
    association: { ...config.association, enabled: associationEnabled, target },
    warnings,
  };
}

/**
 * The failure path upgrades the agent on the instances of the deployment groups in scope, while the
 * launch path and the SendCommand permission follow the Auto Scaling groups in scope: naming one
 * without the other leaves instances the failure path acts on that the rest of the stage does not cover.
 */
function scopeMismatch(groups: readonly string[], deploymentGroups: readonly string[]): string[] {
  if (deploymentGroups.length > 0 && groups.length === 0) {
    return [
      `deploymentGroups lists ${deploymentGroups.length} deployment group(s) but groups lists no Auto Scaling group: no launch path is deployed, and the failure path may send agent commands only to instances of the groups in groups, so it cannot upgrade any agent (it reports the refusals); list their Auto Scaling groups in groups`,
    ];
  }
  if (groups.length > 0 && deploymentGroups.length === 0) {
    return [
      `groups lists ${groups.length} Auto Scaling group(s) but deploymentGroups lists none: no failure path is deployed, so failed deployments are not repaired; list the deployment groups of these Auto Scaling groups in deploymentGroups`,
    ];
  }
  return [];
}

function defaultAssociationTarget(groups: readonly string[]): StageConfig["association"]["target"] {
  // Every instance launched by Auto Scaling carries the aws:autoscaling:groupName tag; "*" is no
  // group name, and an association on every instance of the account is never created by default.
  return groups.length > 0 && !groups.includes(ALL)
    ? { key: `tag:${GROUP_TAG}`, values: [...groups] }
    : undefined;
}

function configError(stage: string, source: string, problems: { path: string; message: string }[]) {
  const lines = problems.map((problem) => `  - ${problem.path}: ${problem.message}`);
  return new StageConfigError(
    `Invalid agentfix configuration for stage "${stage}" (${source}):\n${lines.join("\n")}`,
    problems.map((problem) => problem.path),
  );
}

export interface ConfigSources {
  /** Project root holding agentfix.config.json. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Reads the configuration file and environment override for `stage` and validates the merge. */
export function loadStageConfig(stage: string, sources: ConfigSources = {}): StageConfig {
  const env = sources.env ?? process.env;
  const layers: { source: string; value: Record<string, unknown> }[] = [];
  const otherStages = new Map<string, StageScope>();
  const file = resolve(sources.cwd ?? process.cwd(), env.AGENTFIX_CONFIG_FILE || CONFIG_FILE_NAME);
  if (existsSync(file)) {
    const content = readJson(readFileSync(file, "utf8"), file);
    for (const key of ["default", stage]) {
      const layer = content[key];
      if (layer === undefined) continue;
      if (!isPlainObject(layer))
        throw configError(stage, file, [{ path: key, message: "must be an object" }]);
      layers.push({ source: `${file} "${key}"`, value: layer });
    }
    // The scope of every other stage of the file, so two stages never share a group and "*" never
    // takes another stage's groups.
    const fallback = isPlainObject(content.default) ? content.default : {};
    const strings = (value: unknown) =>
      Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
    for (const [key, layer] of Object.entries(content)) {
      if (key === "default" || key === stage || !isPlainObject(layer)) continue;
      const field = (name: string) => layer[name] ?? fallback[name];
      const account = field("account");
      otherStages.set(key, {
        groups: strings(field("groups")),
        deploymentGroups: strings(field("deploymentGroups")),
        region: String(field("region") ?? env.AWS_REGION ?? "us-east-1"),
        ...(typeof account === "string" ? { account } : {}),
      });
    }
  }
  if (env.AGENTFIX_CONFIG)
    layers.push({ source: "AGENTFIX_CONFIG", value: readJson(env.AGENTFIX_CONFIG, "AGENTFIX_CONFIG") });
  const merged = layers.reduce<Record<string, unknown>>((acc, layer) => deepMerge(acc, layer.value), {});
  const source = layers.length > 0 ? layers.map((layer) => layer.source).join(" + ") : "defaults";
  return parseStageConfig(stage, merged, source, otherStages);
}

function readJson(text: string, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new StageConfigError(`Cannot read ${source}: not valid JSON`, [source], { cause: error });
  }
  if (!isPlainObject(value))
    throw new StageConfigError(`Cannot read ${source}: expected a JSON object`, [source]);
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function deepMerge(
  base: Record<string, unknown>,
  override: Record<string, unknown>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = merged[key];
    merged[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return merged;
}

const cache = new Map<string, StageConfig>();

/** The configuration of the stage being synthesized, loaded once per stage and environment. */
export function useStageConfig(stage: string): StageConfig {
  const key = `${stage}\u0000${process.env.AGENTFIX_CONFIG_FILE ?? ""}\u0000${process.env.AGENTFIX_CONFIG ?? ""}`;
  let config = cache.get(key);
  if (!config) {
    config = loadStageConfig(stage);
    cache.set(key, config);
  }
  return config;
}
