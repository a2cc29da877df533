// The rules that keep a stage from harming an account: which stages pin the agent and to what, which
// hook is the stage's own, what a dry run may create, whom the association reaches, and how the
// launch function keeps its queue safe. parseStageConfig (config.ts) applies them; each broken rule
// is one problem naming its field, each unsafe-but-allowed choice one warning printed at synth.
import { type AgentPackage, ALL } from "../functions/core/contract.js";

/** Stages that run production workloads: they pin the agent version. */
export const PINNED_STAGES: readonly string[] = ["prod", "production", "uat"];
/**
 * The pin production and UAT get unless their configuration names one, per package. Agent 2.x is
 * a separate package with no upgrade path from 1.x: a 2.x stage names its version.
 */
export const DEFAULT_PINS: Readonly<Partial<Record<AgentPackage, string>>> = { AWSCodeDeployAgent: "1.8.1" };
/** The major version each package installs. */
const PACKAGE_MAJOR: Readonly<Record<AgentPackage, string>> = {
  AWSCodeDeployAgent: "1",
  AWSCodeDeployAgentV2: "2",
};

export interface Problem {
  path: string;
  message: string;
}

export function isPinnedStage(stage: string): boolean {
  return PINNED_STAGES.includes(stage.toLowerCase());
}

/** `prd`, `prod-eu`, `uat2`, `live`: names that read like production or UAT but are not in the list. */
export function looksPinned(stage: string): boolean {
  return !isPinnedStage(stage) && /(prod|prd|uat|live)/i.test(stage);
}

/**
 * Each stage's own launch hook, so two stages in one account never act on each other's launches.
 * Since the hooks are keyed by group name, the default name changed as well: a hook of the same
 * name cannot be created beside the one it replaces (CloudFormation creates the new resource before
 * it deletes the old one), so an upgrade creates `agentfix-<stage>-codedeploy-agent-hook` and then
 * deletes the previous release's hook (previousDefaultHookName).
 */
export function defaultHookName(stage: string): string {
  return `agentfix-${stage}-codedeploy-agent-hook`;
}

/**
 * The previous release's default hook name. Still recognised: the launch rule routes its events and
 * the functions receive it (PREVIOUS_LIFECYCLE_HOOK_NAME), so a hook the group's own code manages
 * under that name keeps working until its owner renames it.
 */
export function previousDefaultHookName(stage: string): string {
  return `agentfix-${stage}-install-codedeploy-agent`;
}

/** A stage's scope as another stage of the same file sees it. */
export interface StageScope {
  groups: readonly string[];
  deploymentGroups: readonly string[];
  /** The account the stage states, if it does. */
  account?: string;
  /** The Region it deploys to. */
  region: string;
}

/**
 * `"*"` takes every group of the account and Region: refused when another stage of the file names
 * groups of the same kind in the same account and Region, since this stage would act on them too.
 * Without an account on both stages, the Region alone decides, and the message says so.
 */
export function allGroupsConflicts(
  stage: string,
  own: StageScope,
  otherStages: ReadonlyMap<string, StageScope>,
): Problem[] {
  const problems: Problem[] = [];
  for (const field of ["groups", "deploymentGroups"] as const) {
    if (!own[field].includes(ALL)) continue;
    for (const [other, theirs] of otherStages) {
      if (other === stage || theirs[field].length === 0 || theirs.region !== own.region) continue;
      const bothAccounts = own.account !== undefined && theirs.account !== undefined;
      if (bothAccounts && own.account !== theirs.account) continue;
      const where = bothAccounts
        ? `account ${own.account} and Region ${own.region}`
        : `Region ${own.region} (compared by Region only: ${own.account === undefined ? `stage "${stage}"` : `stage "${other}"`} states no account; set "account" on both stages if they deploy to different accounts)`;
      problems.push({
        path: field,
        message: `"*" takes every ${field === "groups" ? "Auto Scaling group" : "deployment group"} of ${where}, but stage "${other}" names ${field} there too (${theirs[field].join(", ")}): name this stage's ${field} instead`,
      });
    }
  }
  return problems;
}

/**
 * The agent version of a stage, or the problem with it: a pinned stage pins (by default 1.8.1 for the
 * 1.x package, nothing for 2.x); a look-alike stage says what it wants; a pin matches its package.
 */
export function resolveAgentVersion(
  stage: string,
  agent: { package: AgentPackage; version?: string },
): { version: string; problems: Problem[] } {
  const problems: Problem[] = [];
  const explicit = agent.version;
  const defaultPin = DEFAULT_PINS[agent.package];
  let version = explicit ?? "";
  if (isPinnedStage(stage) && explicit === undefined) {
    if (defaultPin) version = defaultPin;
    else
      problems.push({
        path: "agent.version",
        message: `stage "${stage}" pins the agent, and ${agent.package} has no default pin: name its version (for example "2.1.0")`,
      });
  } else if (isPinnedStage(stage) && explicit === "") {
    problems.push({
      path: "agent.version",
      message: `stage "${stage}" runs production workloads and must pin the agent version (for example "${defaultPin ?? "2.1.0"}")`,
    });
  } else if (looksPinned(stage) && explicit === undefined) {
    problems.push({
      path: "agent.version",
      message: `stage "${stage}" reads like production or UAT but is not one of ${PINNED_STAGES.join(", ")}: set agent.version to a version to pin it, or to "latest" to take the newest on purpose`,
    });
  }
  if (version && version.split(".")[0] !== PACKAGE_MAJOR[agent.package]) {
    problems.push({
      path: "agent.version",
      message: `${version} is not a version of ${agent.package}, which installs agent ${PACKAGE_MAJOR[agent.package]}.x`,
    });
  }
  return { version, problems };
}

/** What a dry run may not create: a hook that can abandon, a launch path that abandons, an association that installs. */
export function dryRunProblems(input: {
  dryRun: boolean;
  hookDefaultResult?: string;
  launchFailureResult?: string;
  associationEnabled?: boolean;
}): Problem[] {
  if (!input.dryRun) return [];
  const problems: Problem[] = [];
  if (input.launchFailureResult === "ABANDON") {
    problems.push({
      path: "launch.failureResult",
      message: "a dry run completes every launch with CONTINUE: leave it unset",
    });
  }
  if (input.hookDefaultResult === "ABANDON") {
    problems.push({
      path: "hook.defaultResult",
      message:
        "a dry run must not hold instances: with ABANDON every launch is terminated when the heartbeat times out; leave it unset (a dry run uses CONTINUE)",
    });
  }
  if (input.associationEnabled === true) {
    problems.push({
      path: "association.enabled",
      message: "a dry run creates nothing that acts: no association installs the agent",
    });
  }
  return problems;
}

/**
 * Groups two stages of one configuration file both name: each stage would install its own agent
 * version on the other's instances, race its installs and flip the association's version.
 */
export function sharedGroups(
  stage: string,
  groups: readonly string[],
  otherStages: ReadonlyMap<string, Pick<StageScope, "groups">>,
): Problem[] {
  const problems: Problem[] = [];
  for (const [other, scope] of otherStages) {
    if (other === stage) continue;
    const shared = groups.filter((group) => group !== ALL && scope.groups.includes(group));
    if (shared.length > 0) {
      problems.push({
        path: "groups",
        message: `${shared.join(", ")} ${shared.length > 1 ? "are" : "is"} also in stage "${other}": two stages in one account must not share a group`,
      });
    }
  }
  return problems;
}
