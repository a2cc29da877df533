import { Token } from "aws-cdk-lib";
import type { IAutoScalingGroup } from "aws-cdk-lib/aws-autoscaling";
import type { IServerDeploymentGroup } from "aws-cdk-lib/aws-codedeploy";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import { parseStageConfig, type StageConfig, type StageConfigInput } from "../stacks/config.js";
import { DEFAULT_PINS } from "../stacks/stage-policy.js";

/** The stage an AgentFix takes when its props name none: it names the functions, documents and hook. */
export const DEFAULT_CONSTRUCT_STAGE = "default";

/**
 * The settings of docs/configuration.md, as the configuration file takes them (`launch`, `failure`,
 * `sweep`, `hook`, `association`, `agent`, `dryRun`, `tracing`, `logLevel`, `logRetentionDays`,
 * `timeReserveSeconds`, `leaseTable`, `testEvents`), plus the user's own objects.
 */
export interface AgentFixProps
  extends Omit<StageConfigInput, "groups" | "deploymentGroups" | "alarms" | "region" | "account"> {
  /**
   * Names the functions (`agentfix-<stage>-<role>`), the install document and the hook, and decides
   * the pin (`prod`, `production` and `uat` pin the agent). Default `default`.
   */
  stage?: string;
  /** Auto Scaling groups in scope, as objects of your app. */
  autoScalingGroups?: IAutoScalingGroup[];
  /** Auto Scaling groups in scope, by name, or `["*"]` for every group of the account and Region. */
  groups?: string[];
  /** CodeDeploy deployment groups in scope, as objects of your app. */
  deploymentGroups?: IServerDeploymentGroup[];
  /** CodeDeploy deployment groups in scope as `application/group`, or `["*"]`. */
  deploymentGroupNames?: string[];
  /** The State Manager association's schedule (`association.schedule`). */
  schedule?: string;
  /** Where alarms notify: an e-mail address (a topic is created) ... */
  alarmEmail?: string;
  /** ... or a topic of yours. */
  alarmTopic?: ITopic;
}

/**
 * Values a CloudFormation parameter or another resource fills in at deploy time cannot be checked at
 * synth: the same rules are checked with a representative value instead, and the token is put back
 * (the release template checks such parameters with AllowedValues/AllowedPattern).
 */
const PLACEHOLDERS: Record<string, (input: StageConfigInput) => unknown> = {
  "agent.package": () => "AWSCodeDeployAgent",
  "agent.version": (input) =>
    (typeof input.agent?.package === "string" && !Token.isUnresolved(input.agent.package)
      ? DEFAULT_PINS[input.agent.package]
      : undefined) ??
    (input.agent?.package === "AWSCodeDeployAgentV2" ? "2.0.0" : DEFAULT_PINS.AWSCodeDeployAgent),
  "association.schedule": () => "cron(0 3 ? * * *)",
  "sweep.schedule": () => "rate(1 minute)",
  "launch.failureResult": () => "CONTINUE",
  "alarms.email": () => "alarms@example.com",
  "alarms.topicArn": () => "arn:aws:sns:us-east-1:123456789012:agentfix-alarms",
};

function getPath(object: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>((value, key) => (value as Record<string, unknown>)?.[key], object);
}

function setPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  const last = keys.pop() as string;
  let target = object;
  for (const key of keys) {
    target[key] = { ...((target[key] as Record<string, unknown>) ?? {}) };
    target = target[key] as Record<string, unknown>;
  }
  target[last] = value;
}

/** The configuration input the props say, exactly as agentfix.config.json would say it. */
export function configInput(props: AgentFixProps): StageConfigInput {
  const {
    stage: _stage,
    autoScalingGroups = [],
    groups = [],
    deploymentGroups = [],
    deploymentGroupNames = [],
    schedule,
    alarmEmail,
    alarmTopic,
    ...settings
  } = props;
  const input: StageConfigInput = { ...settings };
  const allGroups = [...groups, ...autoScalingGroups.map((group) => group.autoScalingGroupName)];
  if (allGroups.length > 0) input.groups = allGroups;
  const pairs = [
    ...deploymentGroupNames,
    ...deploymentGroups.map((group) => `${group.application.applicationName}/${group.deploymentGroupName}`),
  ];
  if (pairs.length > 0) input.deploymentGroups = pairs;
  if (schedule !== undefined) input.association = { ...input.association, schedule };
  if (alarmEmail !== undefined) input.alarms = { email: alarmEmail };
  if (alarmTopic && !Token.isUnresolved(alarmTopic.topicArn))
    input.alarms = { ...input.alarms, topicArn: alarmTopic.topicArn };
  return input;
}

/**
 * Validates the props with the configuration file's rules and errors (stacks/config.ts), as the
 * configuration of `stage` from the source `AgentFix props`.
 */
export function agentFixConfig(props: AgentFixProps): StageConfig {
  const stage = props.stage ?? DEFAULT_CONSTRUCT_STAGE;
  const input = configInput(props) as Record<string, unknown>;
  const deferred: [string, unknown][] = [];
  let checked = input;
  for (const [path, placeholder] of Object.entries(PLACEHOLDERS)) {
    const value = getPath(input, path);
    if (typeof value === "string" && Token.isUnresolved(value)) {
      deferred.push([path, value]);
      checked = { ...checked };
      setPath(checked, path, placeholder(input as StageConfigInput));
    }
  }
  const config = parseStageConfig(stage, checked, "AgentFix props");
  for (const [path, value] of deferred) {
    if (path === "launch.failureResult" && config.dryRun) continue;
    setPath(config as unknown as Record<string, unknown>, path, value);
  }
  return config;
}
