import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CustomResource, Names, Token } from "aws-cdk-lib";
import type { CfnLifecycleHook } from "aws-cdk-lib/aws-autoscaling";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import type { Rule } from "aws-cdk-lib/aws-events";
import { Code, type Function as LambdaFunction } from "aws-cdk-lib/aws-lambda";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import type { CfnAssociation } from "aws-cdk-lib/aws-ssm";
import { Construct } from "constructs";
import type { StageConfig } from "../stacks/config.js";
import type { FunctionCode } from "../stacks/service-resources.js";
import { AgentFixFoundation } from "./foundation.js";
import { AgentFixMonitoring } from "./monitoring.js";
import { AgentFixAssociation, AgentFixFailurePath, AgentFixLaunchPath, AgentFixSweep } from "./paths.js";
import { type AgentFixProps, agentFixConfig } from "./props.js";
import { AgentFixTestEvents } from "./test-events.js";

const HERE = dirname(fileURLToPath(import.meta.url));

/** The first of `candidates` (relative to this module) that exists: the package's layout, then the repository's. */
function locate(candidates: string[], what: string): string {
  for (const candidate of candidates) {
    const path = join(HERE, candidate);
    if (existsSync(path)) return path;
  }
  throw new Error(
    `agentfix: ${what} not found (looked in ${candidates.map((c) => join(HERE, c)).join(", ")}); in the repository, run npm run build:lib`,
  );
}

/**
 * The pre-built bundle of each handler (`dist/functions/<name>/index.mjs`): installed from the
 * package as `dist/lib` beside `dist/functions`, or in the repository from `lib/` beside `dist/`.
 */
export const prebuiltCode: FunctionCode = (name) =>
  Code.fromAsset(
    dirname(
      locate(
        [`../functions/${name}/index.mjs`, `../dist/functions/${name}/index.mjs`],
        `the pre-built bundle of ${name}`,
      ),
    ),
  );

/** The sample events of the functions (`events/`), registered as the console's shareable test events. */
export function eventsDirectory(): string {
  return locate(["../../events", "../events"], "the sample events folder");
}

export interface AgentFixOptions {
  /** Where each function's code comes from. Default: the pre-built bundles of the package. */
  code?: FunctionCode;
  /** Stable construct ids of hooks on groups whose names are tokens, by that token. */
  groupKeys?: ReadonlyMap<string, string>;
}

/**
 * agentfix as one construct: keeps the CodeDeploy agent current on the Auto Scaling groups in scope
 * (launch hook, sweep, State Manager association) and repairs the deployments an outdated agent
 * broke (failure path), with its alarms and dashboard. Its props are validated with the rules and
 * errors of agentfix.config.json (docs/configuration.md).
 */
export class AgentFix extends Construct {
  /** The validated configuration, every default filled in. */
  readonly config: StageConfig;
  readonly leaseTable: Table;
  readonly alarmTopic?: ITopic;
  readonly launchFunction?: LambdaFunction;
  readonly failureFunction?: LambdaFunction;
  readonly sweepFunction?: LambdaFunction;
  readonly preflightFunction: LambdaFunction;
  readonly launchQueue?: Queue;
  readonly launchDeadLetterQueue?: Queue;
  readonly failureRetryQueue?: Queue;
  readonly failureDeadLetterQueue?: Queue;
  readonly rules: Rule[] = [];
  /** Our launch hooks, one per group in scope (none when the groups' own code manages them). */
  readonly lifecycleHooks: CfnLifecycleHook[] = [];
  /**
   * The drain of each of our hooks (`Custom::LifecycleHookDrain`, in the order of `lifecycleHooks`):
   * before CloudFormation deletes a hook, the launches waiting on it are completed with CONTINUE.
   */
  readonly lifecycleHookDrains: CustomResource[] = [];
  /** The hook name to put on a group whose own code manages its hooks (`hook.managedBy: "group"`). */
  readonly lifecycleHookName: string;
  readonly association?: CfnAssociation;
  readonly alarms: AgentFixMonitoring["alarms"] = [];
  readonly foundation: AgentFixFoundation;
  readonly launchPath?: AgentFixLaunchPath;
  readonly failurePath?: AgentFixFailurePath;
  readonly sweep?: AgentFixSweep;
  readonly monitoring?: AgentFixMonitoring;

  constructor(scope: Construct, id: string, props: AgentFixProps, options: AgentFixOptions = {}) {
    super(scope, id);
    const config = agentFixConfig(props);
    this.config = config;
    const foundation = new AgentFixFoundation(this, "Foundation", {
      config,
      code: options.code ?? prebuiltCode,
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
    });
    this.foundation = foundation;
    this.leaseTable = foundation.leaseTable;
    if (foundation.alarmTopic) this.alarmTopic = foundation.alarmTopic;
    this.preflightFunction = foundation.node.findChild("PreflightFunction") as LambdaFunction;
    this.lifecycleHookName = config.hook.name;
    const groupKeys = new Map(options.groupKeys);
    for (const group of props.autoScalingGroups ?? []) {
      if (Token.isUnresolved(group.autoScalingGroupName) && !groupKeys.has(group.autoScalingGroupName))
        groupKeys.set(group.autoScalingGroupName, Names.uniqueId(group));
    }

    if (config.paths.launch) {
      const launch = new AgentFixLaunchPath(this, "LaunchPath", foundation, groupKeys);
      const sweep = new AgentFixSweep(this, "Sweep", foundation, launch);
      Object.assign(this, {
        launchPath: launch,
        sweep,
        launchFunction: launch.launchFunction,
        sweepFunction: sweep.sweepFunction,
        launchQueue: launch.queue,
        launchDeadLetterQueue: launch.deadLetterQueue,
      });
      this.rules.push(launch.rule, launch.installEndedRule, sweep.rule);
      this.lifecycleHooks.push(...launch.hooks);
      this.lifecycleHookDrains.push(...launch.drains);
    }
    if (config.paths.failure) {
      const failure = new AgentFixFailurePath(this, "FailurePath", foundation);
      Object.assign(this, {
        failurePath: failure,
        failureFunction: failure.failureFunction,
        failureRetryQueue: failure.retryQueue,
        failureDeadLetterQueue: failure.deadLetterQueue,
      });
      this.rules.push(failure.rule);
    }
    const association = new AgentFixAssociation(this, "AgentAssociation", foundation);
    if (association.association) this.association = association.association;
    if (this.launchPath || this.failurePath) {
      const monitoring = new AgentFixMonitoring(this, "Monitoring", {
        foundation,
        ...(this.launchPath ? { launch: this.launchPath } : {}),
        ...(this.failurePath ? { failure: this.failurePath } : {}),
        ...(this.sweep ? { sweep: this.sweep } : {}),
      });
      this.monitoring = monitoring;
      this.alarms = monitoring.alarms;
      new AgentFixTestEvents(this, "ConsoleTestEvents", {
        config,
        eventsDirectory: config.testEvents.enabled ? eventsDirectory() : "",
        ...(this.launchFunction ? { launchFunction: this.launchFunction } : {}),
        ...(this.failureFunction ? { failureFunction: this.failureFunction } : {}),
        ...(this.sweepFunction ? { sweepFunction: this.sweepFunction } : {}),
      });
    }
  }
}
