import { Stack } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { AGENT_PACKAGES, ALL, GROUP_TAG, installDocumentName } from "../functions/core/contract.js";

/**
 * IAM statements of the service's functions, one builder per concern, so each function's role
 * lists exactly the calls its code makes, on the resources of the groups in scope.
 *
 * Actions without resource-level permissions must use "*" (Service Authorization Reference:
 * "If there is no value for this column, you must specify all resources ("*")"):
 * - SSM DescribeInstanceInformation, ListCommandInvocations, GetCommandInvocation:
 *   https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html
 * - Auto Scaling Describe* calls:
 *   https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html
 * Only read calls are ever granted on "*".
 */

/**
 * Run Command authorizes SendCommand against the instance's tags with the `ssm:resourceTag/<key>`
 * condition key ("Restricting Run Command access based on tags"):
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html
 */
export const SEND_COMMAND_TAG_CONDITION = `ssm:resourceTag/${GROUP_TAG}`;

interface Scope {
  stage: string;
  /**
   * Auto Scaling groups in scope: names, or `["*"]` for every group of the account and Region.
   * Empty means none: no IAM statement reaches any group or instance.
   */
  groups: readonly string[];
}

const all = (names: readonly string[]) => names.includes(ALL);

function env(scope: Construct) {
  const stack = Stack.of(scope);
  return { partition: stack.partition, region: stack.region, account: stack.account };
}

/** The stage's own install document (an account's documents carry its account id in their ARN). */
export function documentArns(scope: Construct, stage: string): string[] {
  const { partition, region, account } = env(scope);
  return [`arn:${partition}:ssm:${region}:${account}:document/${installDocumentName(stage)}`];
}

/** The agent's Distributor packages (AWS-owned documents have no account in their ARN). */
export function packageArns(scope: Construct): string[] {
  const { partition, region } = env(scope);
  return AGENT_PACKAGES.map((name) => `arn:${partition}:ssm:${region}::document/${name}`);
}

export function groupArns(scope: Construct, groups: readonly string[]): string[] {
  const { partition, region, account } = env(scope);
  // The group's ARN embeds a generated id; the name part is what a policy can pin.
  const prefix = `arn:${partition}:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/`;
  // Every group only for the explicit "*"; never for an empty list.
  return all(groups) ? [`${prefix}*`] : groups.map((name) => `${prefix}${name}`);
}

/**
 * SendCommand of the stage's install document only, whose scripts are fixed: AWS notes that whoever may
 * run AWS-RunShellScript administers the instance, so the service is never given it
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/run-command-setting-up.html). On the
 * instances of the groups in scope; with no group listed ("all groups") the instances are only
 * scoped to the account and Region. DescribeDocument of the agent packages tells their newest version.
 */
export function sendCommandStatements(scope: Construct, { stage, groups }: Scope): PolicyStatement[] {
  const { partition, region, account } = env(scope);
  return [
    new PolicyStatement({
      sid: "SendAgentDocuments",
      effect: Effect.ALLOW,
      actions: ["ssm:SendCommand"],
      resources: documentArns(scope, stage),
    }),
    // The functions pin the version of the stage's document whose content is their own.
    new PolicyStatement({
      sid: "ReadAgentDocuments",
      effect: Effect.ALLOW,
      actions: ["ssm:GetDocument"],
      resources: documentArns(scope, stage),
    }),
    new PolicyStatement({
      sid: "ReadAgentPackageVersions",
      effect: Effect.ALLOW,
      actions: ["ssm:DescribeDocument"],
      resources: packageArns(scope),
    }),
    // No group named: no instance may be sent a command. "*": every instance of the account and
    // Region, because the stage said so.
    ...(groups.length === 0
      ? []
      : [
          new PolicyStatement({
            sid: "SendCommandToInstancesInScope",
            effect: Effect.ALLOW,
            actions: ["ssm:SendCommand"],
            resources: [`arn:${partition}:ec2:${region}:${account}:instance/*`],
            ...(all(groups)
              ? {}
              : { conditions: { StringEquals: { [SEND_COMMAND_TAG_CONDITION]: [...groups] } } }),
          }),
        ]),
  ];
}

/** Reads of the agent engine: registration, command progress and output. No resource-level permissions. */
export function ssmReadStatement(): PolicyStatement {
  return new PolicyStatement({
    sid: "ReadCommandsAndRegistration",
    effect: Effect.ALLOW,
    actions: ["ssm:DescribeInstanceInformation", "ssm:ListCommandInvocations"],
    resources: ["*"],
  });
}

/**
 * Before an older running agent on a launching instance is replaced, CodeDeploy is asked whether a
 * deployment is in flight there (functions/core/launch/deployments.ts): read-only list calls. Any
 * deployment group may deploy to a launching group (CodeDeploy's own hook names it), so they reach
 * every application and deployment group of the account and Region; ListApplications has no
 * resource-level permission.
 */
function deploymentReadStatements(scope: Construct): PolicyStatement[] {
  const { partition, region, account } = env(scope);
  const prefix = `arn:${partition}:codedeploy:${region}:${account}`;
  return [
    new PolicyStatement({
      sid: "ListApplications",
      effect: Effect.ALLOW,
      actions: ["codedeploy:ListApplications"],
      resources: ["*"],
    }),
    new PolicyStatement({
      sid: "ReadDeploymentsInFlight",
      effect: Effect.ALLOW,
      actions: [
        "codedeploy:ListDeploymentGroups",
        "codedeploy:ListDeployments",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:ListDeploymentInstances",
      ],
      resources: [`${prefix}:application:*`, `${prefix}:deploymentgroup:*`],
    }),
  ];
}

export function autoScalingReadStatement(actions: string[]): PolicyStatement {
  return new PolicyStatement({
    sid: "ReadAutoScaling",
    effect: Effect.ALLOW,
    actions: actions.map((action) => `autoscaling:${action}`),
    resources: ["*"],
  });
}

export function lifecycleActionStatement(scope: Construct, { groups }: Scope): PolicyStatement {
  return new PolicyStatement({
    sid: "CompleteLifecycleActionsInScope",
    effect: Effect.ALLOW,
    actions: ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
    resources: groupArns(scope, groups),
  });
}

export function deploymentGroupArns(scope: Construct, pairs: readonly string[]): string[] {
  const { partition, region, account } = env(scope);
  const prefix = `arn:${partition}:codedeploy:${region}:${account}:deploymentgroup:`;
  return all(pairs) ? [`${prefix}*/*`] : pairs.map((pair) => `${prefix}${pair}`);
}

export function applicationArns(scope: Construct, pairs: readonly string[]): string[] {
  const { partition, region, account } = env(scope);
  const prefix = `arn:${partition}:codedeploy:${region}:${account}:application:`;
  if (all(pairs)) return [`${prefix}*`];
  const applications = [...new Set(pairs.map((pair) => pair.split("/")[0]))];
  return applications.map((name) => `${prefix}${name}`);
}

/**
 * The CodeDeploy calls of the failure path, on the deployment groups in scope (every group of the
 * account and Region only for the explicit `["*"]`). CodeDeploy authorizes deployment-level calls against the
 * deployment group ARN: https://docs.aws.amazon.com/codedeploy/latest/userguide/auth-and-access-control-permissions-reference.html
 */
export function codeDeployStatements(scope: Construct, pairs: readonly string[]): PolicyStatement[] {
  const { partition, region, account } = env(scope);
  return [
    new PolicyStatement({
      sid: "ReadDeploymentsInScope",
      effect: Effect.ALLOW,
      actions: [
        "codedeploy:GetDeployment",
        "codedeploy:ListDeployments",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:BatchGetDeploymentTargets",
        "codedeploy:ListDeploymentInstances",
        "codedeploy:BatchGetDeploymentInstances",
      ],
      resources: deploymentGroupArns(scope, pairs),
    }),
    // CreateDeployment is authorized against the deployment group and the deployment configuration
    // it names; a redeployment reuses the failed deployment's configuration, whichever it was.
    new PolicyStatement({
      sid: "RedeployInScope",
      effect: Effect.ALLOW,
      actions: ["codedeploy:CreateDeployment"],
      resources: [
        ...deploymentGroupArns(scope, pairs),
        `arn:${partition}:codedeploy:${region}:${account}:deploymentconfig:*`,
      ],
    }),
    new PolicyStatement({
      sid: "ReadDeploymentConfigs",
      effect: Effect.ALLOW,
      actions: ["codedeploy:GetDeploymentConfig"],
      resources: [`arn:${partition}:codedeploy:${region}:${account}:deploymentconfig:*`],
    }),
    new PolicyStatement({
      sid: "ReadRevisionsInScope",
      effect: Effect.ALLOW,
      actions: ["codedeploy:GetApplicationRevision"],
      resources: applicationArns(scope, pairs),
    }),
  ];
}

/**
 * The stage's table, with only the item calls a function makes on it: the launch records, marks and
 * breakers of functions/core/launch/records.ts (GetItem, PutItem), or the leases of
 * functions/core/common/lease.ts (PutItem, DeleteItem).
 */
export function leaseStatement(
  tableArn: string,
  actions: readonly ("GetItem" | "PutItem" | "DeleteItem")[],
): PolicyStatement {
  return new PolicyStatement({
    sid: "UseLeaseTable",
    effect: Effect.ALLOW,
    actions: actions.map((action) => `dynamodb:${action}`),
    resources: [tableArn],
  });
}

/**
 * Why a function's policy holds a wildcard resource, for the cdk-nag AwsSolutions-IAM5 findings.
 * Each is matched against the finding as cdk-nag prints it (`Resource::<arn>`).
 */
export const WILDCARD_EVIDENCE = {
  readOnly: {
    appliesTo: "Resource::*",
    reason:
      "Only calls without resource-level permissions use '*': SSM DescribeInstanceInformation and ListCommandInvocations, Auto Scaling Describe* (read-only; Service Authorization Reference), and X-Ray PutTraceSegments/PutTelemetryRecords added by active tracing (X-Ray has no resource-level permissions).",
  },
  instances: {
    appliesTo: { regex: "/^Resource::arn:<AWS::Partition>:ec2:[a-z0-9-]+:<AWS::AccountId>:instance\\/\\*$/" },
    reason:
      'Instances are launched at any time, so SendCommand names no instance ids; the ssm:resourceTag/aws:autoscaling:groupName condition limits it to the groups in scope (to every instance of the account and Region only when the stage says groups: ["*"]), and a separate statement limits it to the stage\'s install document.',
  },
  allGroups: {
    appliesTo: {
      regex:
        "/^Resource::arn:<AWS::Partition>:autoscaling:[a-z0-9-]+:<AWS::AccountId>:autoScalingGroup:\\*:autoScalingGroupName\\/.*$/",
    },
    reason:
      "A group ARN embeds a generated id, so lifecycle calls are pinned by group name with '*' for the id; only a stage that says groups: [\"*\"] covers every group of the account and Region.",
  },
  drainedGroups: {
    appliesTo: {
      regex:
        "/^Resource::arn:<AWS::Partition>:autoscaling:[a-z0-9-]+:<AWS::AccountId>:autoScalingGroup:\\*:autoScalingGroupName\\/\\*$/",
    },
    reason:
      "The hook drain completes (CONTINUE) the launches waiting on a hook of ours that CloudFormation is about to delete, also on a group the stage no longer names: CloudFormation narrows the policy before it deletes the drain, so a policy pinned to today's groups would leave those launches to be abandoned. Only CloudFormation invokes it, with our hook's name.",
  },
  allDeploymentGroups: {
    appliesTo: {
      regex:
        "/^Resource::arn:<AWS::Partition>:codedeploy:[a-z0-9-]+:<AWS::AccountId>:(deploymentgroup|application):.*\\*.*$/",
    },
    reason:
      'The stage says deploymentGroups: ["*"], so the failure path covers every deployment group of the account and Region on purpose; list deploymentGroups to narrow it.',
  },
  launchDeployments: {
    appliesTo: {
      regex:
        "/^Resource::arn:<AWS::Partition>:codedeploy:[a-z0-9-]+:<AWS::AccountId>:(deploymentgroup|application):\\*$/",
    },
    reason:
      "Before an older running agent on a launching instance is replaced, the launch function lists the deployments in flight of whichever deployment group CodeDeploy's own hook on that group names: read-only list calls, in this account and Region.",
  },
  deploymentConfigs: {
    appliesTo: {
      regex: "/^Resource::arn:<AWS::Partition>:codedeploy:[a-z0-9-]+:<AWS::AccountId>:deploymentconfig:\\*$/",
    },
    reason:
      "A redeployment reuses whatever deployment configuration the failed deployment named, built-in or custom: CreateDeployment is authorized against it and GetDeploymentConfig reads it; the deployment groups themselves stay pinned.",
  },
} as const;

export type WildcardEvidence = keyof typeof WILDCARD_EVIDENCE;

/** What one function may call, and why any statement holds a wildcard resource. */
export interface FunctionAccess {
  statements: PolicyStatement[];
  /** Wildcard resources the statements hold, each with its written reason (WILDCARD_EVIDENCE). */
  wildcards: WildcardEvidence[];
}

/** The launch function: its agent documents, SSM reads, lifecycle calls on its groups, its leases. */
export function launchAccess(
  scope: Construct,
  config: Scope,
  leaseTable: ITable,
  launchQueue: IQueue,
): FunctionAccess {
  return {
    statements: [
      ...sendCommandStatements(scope, config),
      ssmReadStatement(),
      autoScalingReadStatement([
        "DescribeAutoScalingInstances",
        "DescribeLifecycleHooks",
        "DescribeScalingActivities",
      ]),
      ...deploymentReadStatements(scope),
      lifecycleActionStatement(scope, config),
      leaseStatement(leaseTable.tableArn, ["GetItem", "PutItem"]),
      // A launch replayed by hand that is not done when the invocation ends goes on to the queue.
      sendMessageStatement("HandOverReplays", launchQueue),
    ],
    wildcards: ["readOnly", "instances", "allGroups", "launchDeployments"],
  };
}

/** Sending to one queue of the service (SendMessageBatch is authorized as sqs:SendMessage too). */
function sendMessageStatement(sid: string, queue: IQueue): PolicyStatement {
  return new PolicyStatement({
    sid,
    effect: Effect.ALLOW,
    actions: ["sqs:SendMessage"],
    resources: [queue.queueArn],
  });
}

/**
 * The failure function: the targets of a deployment group in scope are instances of the groups in
 * scope (every instance of the account and Region only for groups: ["*"], none when no group is listed); a failure it cannot act
 * on yet goes back to its own retry queue, and to no other.
 */
export function failureAccess(
  scope: Construct,
  config: Scope & { deploymentGroups: readonly string[] },
  leaseTable: ITable,
  retryQueue: IQueue,
): FunctionAccess {
  return {
    statements: [
      ...sendCommandStatements(scope, config),
      ssmReadStatement(),
      ...codeDeployStatements(scope, config.deploymentGroups),
      leaseStatement(leaseTable.tableArn, ["PutItem", "DeleteItem"]),
      sendMessageStatement("DeferFailures", retryQueue),
    ],
    wildcards: ["readOnly", "instances", "allDeploymentGroups", "deploymentConfigs"],
  };
}

/** The sweep: reads of the groups and their activities, and replays onto the launch queue. */
export function sweepAccess(launchQueue: IQueue, leaseTable: ITable): FunctionAccess {
  return {
    statements: [
      // The launch records: the sweep leaves alone the launches the launch path has in hand.
      new PolicyStatement({
        sid: "ReadLaunchRecords",
        effect: Effect.ALLOW,
        actions: ["dynamodb:GetItem"],
        resources: [leaseTable.tableArn],
      }),
      autoScalingReadStatement([
        "DescribeAutoScalingGroups",
        "DescribeLifecycleHooks",
        "DescribeScalingActivities",
        "DescribeWarmPool",
      ]),
      sendMessageStatement("EnqueueReplays", launchQueue),
    ],
    wildcards: ["readOnly"],
  };
}
