import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Stack } from "aws-cdk-lib";
import { beforeAll, describe, expect, it } from "vitest";
import { installDocumentContent } from "../../functions/core/agent/documents.js";
import { loadFailureConfig, loadLaunchConfig, loadSweepConfig } from "../../functions/core/config.js";
import { installDocumentName } from "../../functions/core/contract.js";
import { type SynthesizedStage, synthesizeStage } from "../../scripts/synthesize.js";
import { DRAIN_RESOURCE_TYPE } from "../../stacks/drain.js";
import { deploymentFailureEventPattern, launchEventPattern } from "../../stacks/patterns.js";
import { PREFLIGHT_RESOURCE_TYPE } from "../../stacks/preflight.js";
import { createLifecycleHooks } from "../../stacks/service-resources.js";
import { defaultHookName, previousDefaultHookName } from "../../stacks/stage-policy.js";
import {
  allowing,
  flatten,
  type Resource,
  resource,
  resources,
  roleStatements,
  type Statement,
} from "./template-helpers.js";

/**
 * The service's stacks as CloudFormation sees them, for three stages of tests/stacks/fixtures:
 * - prod: groups and deployment groups listed, version pinned, alarms mailed; functions bundled
 *   as for a deploy;
 * - dev: one group, latest agent, association by tag:Name;
 * - dry: a dry run on one group;
 * - qa: "*" for groups and deployment groups, so every group and deployment group of the account
 *   is in scope, on purpose (in an account of its own: "*" beside another stage's groups is refused);
 * - assoc: no groups and no deployment groups, only an association target: no launch or failure path.
 * Each stage is synthesized once; dev and qa skip the (slow) function bundling.
 */
const FIXTURE = join(import.meta.dirname, "fixtures", "agentfix.config.json");
const PROD_GROUPS = ["web-prod", "api-prod"];
const PROD_PAIRS = ["billing/billing-prod", "billing/billing-prod-canary", "catalog/catalog-prod"];
const HOOK = defaultHookName("prod");
/** The hook names the launch rule routes: the stage's, and the previous release's default. */
const HOOK_NAMES = [HOOK, previousDefaultHookName("prod")];
const REGION = "us-east-1";

const synthesized: Record<string, SynthesizedStage> = {};

beforeAll(async () => {
  process.env.AGENTFIX_CONFIG_FILE = FIXTURE;
  delete process.env.AGENTFIX_CONFIG;
  synthesized.prod = await synthesizeStage({ stage: "prod" });
  synthesized.dev = await synthesizeStage({ stage: "dev", bundle: false });
  synthesized.qa = await synthesizeStage({ stage: "qa", bundle: false });
  synthesized.dry = await synthesizeStage({ stage: "dry", bundle: false });
  synthesized.assoc = await synthesizeStage({ stage: "assoc", bundle: false });
}, 300_000);

function template(stage: string, stack: string): Record<string, unknown> {
  const found = synthesized[stage]?.stacks.find((candidate) => candidate.name === stack);
  if (!found) throw new Error(`no ${stack} stack for ${stage}`);
  return found.template;
}

function fn(stage: string, stack: string, id: string): Resource {
  return resource(template(stage, stack), "AWS::Lambda::Function", id);
}

function statementsOf(stage: string, stack: string, id: string): Statement[] {
  const roleId = (fn(stage, stack, id).Properties.Role as { "Fn::GetAtt": string[] })[
    "Fn::GetAtt"
  ][0] as string;
  return roleStatements(template(stage, stack), roleId);
}

function environmentOf(stage: string, stack: string, id: string): Record<string, string> {
  const t = template(stage, stack);
  const variables = (fn(stage, stack, id).Properties.Environment as { Variables: unknown }).Variables;
  return flatten(variables, t) as Record<string, string>;
}

const FUNCTIONS: [stack: string, id: string, handler: string][] = [
  ["LaunchPath", "LaunchFunction", "functions/launch.handler"],
  ["FailurePath", "DeploymentFailureFunction", "functions/deployment-failure.handler"],
  ["Sweep", "SweepFunction", "functions/sweep.handler"],
];

describe("1. configuration per stage", () => {
  it("pins the agent version in production and installs the latest on other stages", () => {
    for (const [stack, id] of FUNCTIONS.slice(0, 2)) {
      expect(environmentOf("prod", stack, id).AGENT_VERSION).toBe("1.8.1");
      expect(environmentOf("dev", stack, id).AGENT_VERSION).toBe("");
      expect(environmentOf("qa", stack, id).AGENT_VERSION).toBe("");
    }
  });

  it("gives each function configuration its own loader accepts, with the stage's values", () => {
    const launch = loadLaunchConfig(environmentOf("prod", "LaunchPath", "LaunchFunction"));
    expect(launch).toMatchObject({
      STAGE: "prod",
      AGENT_PACKAGE: "AWSCodeDeployAgent",
      AGENT_VERSION: "1.8.1",
      TARGET_GROUPS: PROD_GROUPS,
      LIFECYCLE_HOOK_NAME: HOOK,
      // Fail open by default (prod opts into ABANDON for its hook only).
      FAILURE_RESULT: "CONTINUE",
      INSTALL_ATTEMPTS: 2,
      DRY_RUN: false,
      LAUNCH_COMPLETION: "events",
      REGISTRATION_POLL_SECONDS: 10,
      COMMAND_OVERDUE_SECONDS: 60,
    });
    expect(launch.LEASE_TABLE).toMatch(/^<Import:prod-agentfix-Foundation:.*LeaseTable/);

    const failure = loadFailureConfig(environmentOf("prod", "FailurePath", "DeploymentFailureFunction"));
    expect(failure).toMatchObject({
      TARGET_DEPLOYMENT_GROUPS: PROD_PAIRS,
      MAX_REDEPLOYS: 1,
      REDEPLOY_WHEN: "agent-changed",
      AGENT_VERSION: "1.8.1",
    });

    const sweep = loadSweepConfig({
      ...environmentOf("prod", "Sweep", "SweepFunction"),
      LAUNCH_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/launch",
    });
    expect(sweep).toMatchObject({
      TARGET_GROUPS: PROD_GROUPS,
      LIFECYCLE_HOOK_NAME: HOOK,
      STALE_AFTER_SECONDS: 20,
    });
    expect(sweep.LEASE_TABLE).toMatch(/^<Import:prod-agentfix-Foundation:.*LeaseTable/);
    expect(environmentOf("prod", "Sweep", "SweepFunction").LAUNCH_QUEUE_URL).toMatch(
      /^<Import:prod-agentfix-LaunchPath:.*LaunchQueue/,
    );

    expect(loadLaunchConfig(environmentOf("dry", "LaunchPath", "LaunchFunction"))).toMatchObject({
      STAGE: "dry",
      TARGET_GROUPS: ["web-dry"],
      DRY_RUN: true,
    });
    // "*" reaches the functions literally; an empty list never does (no groups, no launch function).
    expect(environmentOf("qa", "LaunchPath", "LaunchFunction").TARGET_GROUPS).toBe("*");
    expect(loadLaunchConfig(environmentOf("qa", "LaunchPath", "LaunchFunction")).TARGET_GROUPS).toEqual([
      "*",
    ]);
    expect(
      loadFailureConfig(environmentOf("qa", "FailurePath", "DeploymentFailureFunction"))
        .TARGET_DEPLOYMENT_GROUPS,
    ).toEqual(["*"]);
    // Every function knows its stage (the `stage` dimension of its metrics).
    for (const [stack, id] of FUNCTIONS) expect(environmentOf("prod", stack, id).STAGE).toBe("prod");
  });

  it("stops the synth with one error naming every bad field", async () => {
    process.env.AGENTFIX_CONFIG = JSON.stringify({
      hook: { heartbeatTimeoutSeconds: 5 },
      association: { maxConcurrency: "100%" },
    });
    try {
      await expect(synthesizeStage({ stage: "staging", bundle: false, nag: false })).rejects.toThrow(
        /Invalid agentfix configuration for stage "staging"[\s\S]*hook\.heartbeatTimeoutSeconds[\s\S]*association\.maxConcurrency/,
      );
    } finally {
      delete process.env.AGENTFIX_CONFIG;
    }
  });
});

describe("2. launch path", () => {
  it("routes our hook's launch events for the groups in scope to the launch queue", () => {
    const t = template("prod", "LaunchPath");
    const rule = resource(t, "AWS::Events::Rule", "LaunchLifecycleRule");
    expect(rule.Properties.EventPattern).toEqual(launchEventPattern(PROD_GROUPS, HOOK_NAMES));
    expect(rule.Properties.EventPattern).toMatchObject({
      source: ["aws.autoscaling"],
      "detail-type": ["EC2 Instance-launch Lifecycle Action"],
      detail: { AutoScalingGroupName: PROD_GROUPS, LifecycleHookName: HOOK_NAMES },
    });
    const queue = resource(t, "AWS::SQS::Queue", "LaunchQueue");
    const dlq = resource(t, "AWS::SQS::Queue", "LaunchDeadLetterQueue");
    const [target] = flatten(rule.Properties.Targets, t) as Record<string, unknown>[];
    expect(target).toMatchObject({
      Arn: `<GetAtt:${queue.id}.Arn>`,
      DeadLetterConfig: { Arn: `<GetAtt:${dlq.id}.Arn>` },
      RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 },
    });

    const qaRule = resource(template("qa", "LaunchPath"), "AWS::Events::Rule", "LaunchLifecycleRule");
    // "*": every group, said on purpose; no AutoScalingGroupName filter.
    expect(qaRule.Properties.EventPattern).toEqual(
      launchEventPattern(["*"], [defaultHookName("qa"), previousDefaultHookName("qa")]),
    );
    expect((qaRule.Properties.EventPattern as { detail: object }).detail).not.toHaveProperty(
      "AutoScalingGroupName",
    );
  });

  it("lets only this rule send to the queue, over TLS", () => {
    const t = template("prod", "LaunchPath");
    const rule = resource(t, "AWS::Events::Rule", "LaunchLifecycleRule");
    const queue = resource(t, "AWS::SQS::Queue", "LaunchQueue");
    const policy = resources(t, "AWS::SQS::QueuePolicy").find((candidate) =>
      (candidate.Properties.Queues as { Ref: string }[]).some((ref) => ref.Ref === queue.id),
    );
    const statements = (
      flatten(policy?.Properties.PolicyDocument, t) as { Statement: Record<string, unknown>[] }
    ).Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: "Allow",
        Principal: { Service: "events.amazonaws.com" },
        Action: expect.arrayContaining(["sqs:SendMessage"]),
        Condition: { ArnEquals: { "aws:SourceArn": `<GetAtt:${rule.id}.Arn>` } },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    );
  });

  it("keeps the queue encrypted, hides a batch longer than the function runs, and dead-letters repeated failures", () => {
    const t = template("prod", "LaunchPath");
    const queue = resource(t, "AWS::SQS::Queue", "LaunchQueue");
    const dlq = resource(t, "AWS::SQS::Queue", "LaunchDeadLetterQueue");
    const timeout = fn("prod", "LaunchPath", "LaunchFunction").Properties.Timeout as number;
    // Event completion: an invocation takes a step and returns, so a cut-off one is back in 30 s.
    expect(timeout).toBe(20);
    expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    expect(dlq.Properties.SqsManagedSseEnabled).toBe(true);
    expect(queue.Properties.VisibilityTimeout).toBe(timeout + 10);
    // A launch message comes back every few seconds while its instance registers (10 minutes at most).
    expect(flatten(queue.Properties.RedrivePolicy, t)).toEqual({
      deadLetterTargetArn: `<GetAtt:${dlq.id}.Arn>`,
      maxReceiveCount: 100,
    });
  });

  it("sends the ended invocations of the stage's install document to the launch queue", () => {
    const t = template("prod", "LaunchPath");
    const rule = resource(t, "AWS::Events::Rule", "InstallEndedRule");
    const queue = resource(t, "AWS::SQS::Queue", "LaunchQueue");
    expect(rule.Properties.State).toBe("ENABLED");
    expect(rule.Properties.EventPattern).toEqual({
      source: ["aws.ssm"],
      "detail-type": ["EC2 Command Invocation Status-change Notification"],
      detail: {
        "document-name": [installDocumentName("prod")],
        status: expect.arrayContaining(["Success", "Failed", "TimedOut", "Cancelled"]),
      },
    });
    expect((flatten(rule.Properties.Targets, t) as { Arn: string }[])[0]?.Arn).toBe(
      `<GetAtt:${queue.id}.Arn>`,
    );
  });

  it("feeds the launch function in batches of up to 50 with partial batch responses and capped concurrency", () => {
    const t = template("prod", "LaunchPath");
    const mapping = resources(t, "AWS::Lambda::EventSourceMapping")[0];
    const launch = fn("prod", "LaunchPath", "LaunchFunction");
    const queue = resource(t, "AWS::SQS::Queue", "LaunchQueue");
    expect(flatten(mapping?.Properties, t)).toMatchObject({
      EventSourceArn: `<GetAtt:${queue.id}.Arn>`,
      FunctionName: `<Ref:${launch.id}>`,
      BatchSize: 50,
      MaximumBatchingWindowInSeconds: 2,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 20 },
    });
  });
});

describe("3. lifecycle hooks", () => {
  it("creates our launch hook on each group in scope, without a notification target, after the rule", () => {
    const t = template("prod", "LaunchPath");
    const hooks = resources(t, "AWS::AutoScaling::LifecycleHook");
    expect(hooks.map((hook) => hook.Properties.AutoScalingGroupName)).toEqual(PROD_GROUPS);
    const rule = resource(t, "AWS::Events::Rule", "LaunchLifecycleRule");
    for (const hook of hooks) {
      expect(hook.Properties).toEqual({
        AutoScalingGroupName: expect.any(String),
        LifecycleHookName: HOOK,
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout: 1200,
        DefaultResult: "ABANDON",
      });
      expect(hook.DependsOn).toContain(rule.id);
    }
    expect(resources(template("dev", "LaunchPath"), "AWS::AutoScaling::LifecycleHook")).toHaveLength(1);
  });

  it("keys each hook by its group's name, so removing a group from the middle of the list replaces no other hook", () => {
    const ids = (groups: string[]) => {
      const stack = new Stack(new App(), "HookIds");
      const hooks = createLifecycleHooks(
        stack,
        [
          {
            id: "LaunchHook",
            name: HOOK,
            transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
            heartbeatTimeoutSeconds: 900,
            defaultResult: "CONTINUE",
            groups,
          },
        ],
        [],
      );
      return Object.fromEntries(hooks.map((hook) => [hook.autoScalingGroupName, stack.getLogicalId(hook)]));
    };
    const before = ids(["web", "api", "batch"]);
    const after = ids(["web", "batch"]);
    expect(after).toEqual({ web: before.web, batch: before.batch });
    expect(new Set(Object.values(before)).size).toBe(3);
    // Names that differ only by "/" or "%" stay distinct.
    const tricky = ids(["a/b", "a%2Fb"]);
    expect(new Set(Object.values(tricky)).size).toBe(2);
    // The synthesized hooks carry their group's name in their logical ids.
    const prodIds = resources(template("prod", "LaunchPath"), "AWS::AutoScaling::LifecycleHook").map(
      (hook) => hook.id,
    );
    expect(prodIds.map((id) => id.replace(/[0-9A-F]{8}$/, ""))).toEqual([
      "LaunchHookwebprod",
      "LaunchHookapiprod",
    ]);
  });

  it("leaves the hook to the groups' own code when the stage says every group", () => {
    expect(resources(template("qa", "LaunchPath"), "AWS::AutoScaling::LifecycleHook")).toEqual([]);
  });

  it("drains each hook before CloudFormation deletes it: waiting launches are completed with CONTINUE, also on a group the stage stops naming", () => {
    const t = template("prod", "LaunchPath");
    const hooks = resources(t, "AWS::AutoScaling::LifecycleHook");
    const drains = resources(t, DRAIN_RESOURCE_TYPE);
    expect(drains).toHaveLength(hooks.length);
    for (const hook of hooks) {
      const drain = drains.find(
        (candidate) => candidate.Properties.AutoScalingGroupName === hook.Properties.AutoScalingGroupName,
      );
      expect(flatten(drain?.Properties, t)).toMatchObject({
        ServiceToken: expect.stringMatching(/^<GetAtt:DrainHookFunction.*\.Arn>$/),
        LifecycleHookName: HOOK,
      });
      // The drain depends on its hook, so CloudFormation deletes the drain (which runs) first.
      expect(drain?.DependsOn).toContain(hook.id);
    }
    const drainFunction = fn("prod", "LaunchPath", "DrainHookFunction");
    // Its pre-built bundle (dist/functions/drain-hook/index.mjs), as the construct and the release ship it.
    expect(drainFunction.Properties).toMatchObject({
      Handler: "index.handler",
      FunctionName: "agentfix-prod-drain-hook",
      Runtime: "nodejs22.x",
    });
    expect(flatten(drainFunction.Properties.Code)).toMatchObject({
      S3Bucket: `cdk-hnb659fds-assets-123456789012-${REGION}`,
      S3Key: expect.stringMatching(/\.zip$/),
    });
    const statements = statementsOf("prod", "LaunchPath", "DrainHookFunction");
    // Any group's: a group that leaves the stage is drained after CloudFormation has narrowed the
    // stage's other policies to the groups it still names.
    expect(allowing(statements, "autoscaling:CompleteLifecycleAction")).toEqual([
      expect.objectContaining({
        Resource: [expect.stringMatching(/:autoScalingGroup:\*:autoScalingGroupName\/\*$/)],
      }),
    ]);
    // The group's instances and its warm pool's, where launches also wait on the hook.
    for (const read of ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeWarmPool"])
      expect(allowing(statements, read), read).toEqual([expect.objectContaining({ Resource: ["*"] })]);
    expect(allowing(statements, "autoscaling:DeleteLifecycleHook")).toEqual([]);
    expect(allowing(statements, "ssm:SendCommand")).toEqual([]);
    // No hook, no drain.
    expect(resources(template("qa", "LaunchPath"), DRAIN_RESOURCE_TYPE)).toEqual([]);
  });
});

describe("4. failure path", () => {
  it("invokes the failure function for failed deployments of the deployment groups in scope", () => {
    const t = template("prod", "FailurePath");
    const rule = resource(t, "AWS::Events::Rule", "DeploymentFailureRule");
    expect(rule.Properties.EventPattern).toEqual(deploymentFailureEventPattern(PROD_PAIRS));
    expect(rule.Properties.EventPattern).toMatchObject({
      source: ["aws.codedeploy"],
      "detail-type": ["CodeDeploy Deployment State-change Notification"],
      detail: { state: ["FAILURE"], application: ["billing", "catalog"] },
    });
    const failure = fn("prod", "FailurePath", "DeploymentFailureFunction");
    const dlq = resource(t, "AWS::SQS::Queue", "FailureDeadLetterQueue");
    const [target] = flatten(rule.Properties.Targets, t) as Record<string, unknown>[];
    expect(target).toMatchObject({
      Arn: `<GetAtt:${failure.id}.Arn>`,
      DeadLetterConfig: { Arn: `<GetAtt:${dlq.id}.Arn>` },
      RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 3600 },
    });
    expect(
      resource(template("qa", "FailurePath"), "AWS::Events::Rule", "DeploymentFailureRule").Properties
        .EventPattern,
    ).toEqual(deploymentFailureEventPattern(["*"]));
  });

  it("retries the asynchronous invocation on an explicit policy and sends what still fails to the dead-letter queue", () => {
    const t = template("prod", "FailurePath");
    const failure = fn("prod", "FailurePath", "DeploymentFailureFunction");
    const dlq = resource(t, "AWS::SQS::Queue", "FailureDeadLetterQueue");
    const config = resources(t, "AWS::Lambda::EventInvokeConfig")[0];
    expect(flatten(config?.Properties, t)).toMatchObject({
      FunctionName: `<Ref:${failure.id}>`,
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: `<GetAtt:${dlq.id}.Arn>` } },
    });
    expect(dlq.Properties.SqsManagedSseEnabled).toBe(true);
  });
});

describe("4b. failure retry queue", () => {
  it("brings deferred failures back through a queue the failure function reads one at a time, with a dead-letter queue", () => {
    const t = template("prod", "FailurePath");
    const failure = fn("prod", "FailurePath", "DeploymentFailureFunction");
    const retry = resource(t, "AWS::SQS::Queue", "FailureRetryQueue");
    const dlq = resource(t, "AWS::SQS::Queue", "FailureDeadLetterQueue");
    expect(flatten(retry.Properties, t)).toMatchObject({
      SqsManagedSseEnabled: true,
      // Above the function timeout, or the event source mapping is refused.
      VisibilityTimeout: 2 * Number(failure.Properties.Timeout),
      RedrivePolicy: { deadLetterTargetArn: `<GetAtt:${dlq.id}.Arn>`, maxReceiveCount: 5 },
    });
    const mappings = resources(t, "AWS::Lambda::EventSourceMapping");
    expect(mappings.map((mapping) => flatten(mapping.Properties, t))).toEqual([
      expect.objectContaining({
        EventSourceArn: `<GetAtt:${retry.id}.Arn>`,
        FunctionName: `<Ref:${failure.id}>`,
        BatchSize: 1,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        ScalingConfig: { MaximumConcurrency: 5 },
      }),
    ]);
  });

  it("tells the failure function its retry queue, how long to wait for a busy group and for a rollback", () => {
    const environment = environmentOf("prod", "FailurePath", "DeploymentFailureFunction");
    expect(environment.FAILURE_RETRY_QUEUE_URL).toMatch(/\/FailureRetryQueue[0-9A-F]+$/);
    expect(loadFailureConfig(environment)).toMatchObject({
      BUSY_GROUP_RETRY_HOURS: 4,
      ROLLBACK_WAIT_SECONDS: 120,
    });
  });

  it("lets the failure function send to its own retry queue only (Lambda sends its failure records to the dead-letter queue)", () => {
    const statements = statementsOf("prod", "FailurePath", "DeploymentFailureFunction");
    const retryQueue = expect.stringMatching(/^<GetAtt:FailureRetryQueue.*\.Arn>$/);
    const deadLetterQueue = expect.stringMatching(/^<GetAtt:FailureDeadLetterQueue.*\.Arn>$/);
    expect(allowing(statements, "sqs:SendMessage")).toEqual([
      expect.objectContaining({ Sid: "DeferFailures", Action: ["sqs:SendMessage"], Resource: [retryQueue] }),
      // The asynchronous-invoke failure destination, which Lambda sends to with the function's role.
      expect.objectContaining({ Resource: [deadLetterQueue] }),
    ]);
    // The event source mapping reads the retry queue and nothing else.
    expect(allowing(statements, "sqs:ReceiveMessage")).toEqual([
      expect.objectContaining({ Resource: [retryQueue] }),
    ]);
  });
});

describe("5. sweep", () => {
  it("runs the sweep every minute against the launch queue", () => {
    const t = template("prod", "Sweep");
    const rule = resource(t, "AWS::Events::Rule", "SweepSchedule");
    const sweep = fn("prod", "Sweep", "SweepFunction");
    expect(rule.Properties.ScheduleExpression).toBe("rate(1 minute)");
    expect(rule.Properties.State).toBe("ENABLED");
    expect((flatten(rule.Properties.Targets, t) as { Arn: string }[])[0]?.Arn).toBe(
      `<GetAtt:${sweep.id}.Arn>`,
    );
    expect(environmentOf("prod", "Sweep", "SweepFunction")).toMatchObject({
      TARGET_GROUPS: PROD_GROUPS.join(","),
      LIFECYCLE_HOOK_NAME: HOOK,
      STALE_AFTER_SECONDS: "20",
      DRY_RUN: "false",
    });
  });
});

describe("6. State Manager association", () => {
  it("installs the pinned agent version with the stage's own document, on the groups in scope, in production", () => {
    const association = resource(
      template("prod", "AgentAssociation"),
      "AWS::SSM::Association",
      "InstallCodeDeployAgent",
    );
    expect(association.Properties).toMatchObject({
      AssociationName: "agentfix-prod-install-codedeployagent",
      Parameters: { packageName: ["AWSCodeDeployAgent"], version: ["1.8.1"], expectedVersion: ["1.8.1"] },
      Targets: [{ Key: "tag:aws:autoscaling:groupName", Values: PROD_GROUPS }],
      ScheduleExpression: "cron(0 2 ? * SUN *)",
      ApplyOnlyAtCronInterval: true,
      ComplianceSeverity: "CRITICAL",
      MaxConcurrency: "20%",
      MaxErrors: "5%",
    });
    expect(JSON.stringify(association.Properties.Name)).toMatch(/InstallAgentDocument/);
  });

  it("leaves the version empty on other stages, so Distributor installs the latest", () => {
    const dev = resource(
      template("dev", "AgentAssociation"),
      "AWS::SSM::Association",
      "InstallCodeDeployAgent",
    );
    expect(dev.Properties).toMatchObject({
      AssociationName: "agentfix-dev-install-codedeployagent",
      Parameters: { packageName: ["AWSCodeDeployAgent"], version: [""], expectedVersion: [""] },
      Targets: [{ Key: "tag:Name", Values: ["web-dev", "api-dev"] }],
      ScheduleExpression: "cron(0 3 ? * * *)",
      ComplianceSeverity: "HIGH",
    });
  });

  it("creates no association when the stage names no instances, nor in a dry run", () => {
    expect(resources(template("qa", "AgentAssociation"), "AWS::SSM::Association")).toEqual([]);
    expect(resources(template("dry", "AgentAssociation"), "AWS::SSM::Association")).toEqual([]);
  });

  it("never lets a run take a whole group offline", () => {
    for (const stage of ["prod", "dev"]) {
      const { MaxConcurrency, MaxErrors } = resource(
        template(stage, "AgentAssociation"),
        "AWS::SSM::Association",
        "InstallCodeDeployAgent",
      ).Properties as { MaxConcurrency: string; MaxErrors: string };
      expect(MaxConcurrency).toMatch(/^\d{1,2}%$/);
      expect(Number.parseInt(MaxConcurrency, 10)).toBeLessThanOrEqual(50);
      expect(MaxErrors).toMatch(/^\d{1,3}%$/);
    }
  });
});

describe("6b. the stage's own documents and a dry run", () => {
  it("creates the install document of the stage, with fixed scripts, and no other", () => {
    const t = template("prod", "Foundation");
    const install = resource(t, "AWS::SSM::Document", "InstallAgentDocument");
    expect(resources(t, "AWS::SSM::Document")).toHaveLength(1);
    expect(install.Properties).toMatchObject({
      Name: "agentfix-prod-install-codedeploy-agent",
      DocumentType: "Command",
      DocumentFormat: "JSON",
      Content: installDocumentContent("prod"),
    });
  });

  it("holds no launch in a dry run: its hook continues when it times out", () => {
    const [hook] = resources(template("dry", "LaunchPath"), "AWS::AutoScaling::LifecycleHook");
    expect(hook?.Properties).toMatchObject({
      LifecycleHookName: defaultHookName("dry"),
      DefaultResult: "CONTINUE",
    });
  });

  it("reserves the launch function's concurrency for its event source", () => {
    expect(fn("prod", "LaunchPath", "LaunchFunction").Properties.ReservedConcurrentExecutions).toBe(20);
  });
});

describe("7. functions", () => {
  it("run Node.js 22 on arm64 with explicit memory and timeout, X-Ray and Powertools settings", () => {
    for (const stage of ["prod", "dev", "qa"]) {
      for (const [stack, id] of FUNCTIONS) {
        const { Properties } = fn(stage, stack, id);
        expect(Properties).toMatchObject({
          Runtime: "nodejs22.x",
          Architectures: ["arm64"],
          TracingConfig: { Mode: "Active" },
        });
        expect(Properties.MemorySize).toEqual(expect.any(Number));
        expect(Properties.Timeout).toEqual(expect.any(Number));
        expect(environmentOf(stage, stack, id)).toMatchObject({
          POWERTOOLS_SERVICE_NAME: "agentfix",
          POWERTOOLS_METRICS_NAMESPACE: "Agentfix",
          POWERTOOLS_LOG_LEVEL: stage === "dev" ? "DEBUG" : "INFO",
          POWERTOOLS_TRACE_ENABLED: "true",
        });
      }
    }
    // Tracing off: no X-Ray, and the handlers never load the tracer.
    for (const [stack, id] of FUNCTIONS) {
      expect(fn("dry", stack, id).Properties.TracingConfig).toBeUndefined();
      expect(environmentOf("dry", stack, id).POWERTOOLS_TRACE_ENABLED).toBe("false");
    }
    expect(fn("prod", "FailurePath", "DeploymentFailureFunction").Properties).toMatchObject({
      Timeout: 900,
      MemorySize: 512,
    });
    expect(fn("prod", "Sweep", "SweepFunction").Properties).toMatchObject({ Timeout: 60, MemorySize: 256 });
  });

  it("bundles each handler for deployment", () => {
    for (const [stack, id, handler] of FUNCTIONS) {
      const { Properties } = fn("prod", stack, id);
      // Each function's pre-built bundle (dist/functions/<name>/index.mjs) is the asset's root.
      expect(handler).toMatch(/^functions\/[a-z-]+\.handler$/);
      expect(Properties.Handler).toBe("index.handler");
      expect(flatten(Properties.Code)).toMatchObject({
        S3Bucket: `cdk-hnb659fds-assets-123456789012-${REGION}`,
        S3Key: expect.stringMatching(/\.zip$/),
      });
    }
  });

  it("log to their own log group with the stage's retention", () => {
    for (const [stack, id] of FUNCTIONS) {
      const t = template("prod", stack);
      const logGroupId = (fn("prod", stack, id).Properties.LoggingConfig as { LogGroup: { Ref: string } })
        .LogGroup.Ref;
      expect(resource(t, "AWS::Logs::LogGroup", logGroupId).Properties.RetentionInDays).toBe(30);
      expect(allowing(statementsOf("prod", stack, id), "logs:PutLogEvents")).toEqual([
        expect.objectContaining({ Resource: [`<GetAtt:${logGroupId}.Arn>`] }),
      ]);
    }
  });
});

describe("8. least privilege", () => {
  /** Calls IAM cannot scope to a resource; all read-only except X-Ray's, which active tracing needs. */
  const UNSCOPABLE = new Set([
    "ssm:DescribeInstanceInformation",
    "ssm:ListCommandInvocations",
    "ssm:GetCommandInvocation",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLifecycleHooks",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeWarmPool",
    "codedeploy:ListApplications",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
  ]);

  it("grants no wildcard action, and '*' only to calls without resource-level permissions", () => {
    for (const stage of ["prod", "dev", "qa"]) {
      for (const [stack, id] of FUNCTIONS) {
        for (const statement of statementsOf(stage, stack, id)) {
          for (const action of statement.Action) expect(action).not.toMatch(/(^\*$|:\*$|\*)/);
          if (statement.Resource.includes("*")) {
            expect(statement.Action.filter((action) => !UNSCOPABLE.has(action))).toEqual([]);
          }
        }
      }
    }
  });

  it("lets the launch function send only the agent documents, to instances of the groups in scope", () => {
    const sends = allowing(statementsOf("prod", "LaunchPath", "LaunchFunction"), "ssm:SendCommand");
    expect(sends).toEqual([
      expect.objectContaining({
        Resource: [`arn:aws:ssm:${REGION}:123456789012:document/agentfix-prod-install-codedeploy-agent`],
      }),
      expect.objectContaining({
        Resource: [`arn:aws:ec2:${REGION}:123456789012:instance/*`],
        Condition: { StringEquals: { "ssm:resourceTag/aws:autoscaling:groupName": PROD_GROUPS } },
      }),
    ]);
    for (const statement of sends) expect(statement.Action).toEqual(["ssm:SendCommand"]);
    // "All groups": instances are scoped to the account and Region only.
    const qaSends = allowing(statementsOf("qa", "LaunchPath", "LaunchFunction"), "ssm:SendCommand");
    expect(qaSends[1]).toMatchObject({ Resource: [`arn:aws:ec2:${REGION}:123456789012:instance/*`] });
    expect(qaSends[1]?.Condition).toBeUndefined();
  });

  it("lets the launch function complete and heartbeat lifecycle actions only on the groups in scope", () => {
    const prefix = `arn:aws:autoscaling:${REGION}:123456789012:autoScalingGroup:*:autoScalingGroupName/`;
    for (const action of [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
    ]) {
      expect(allowing(statementsOf("prod", "LaunchPath", "LaunchFunction"), action)).toEqual([
        expect.objectContaining({ Resource: PROD_GROUPS.map((group) => `${prefix}${group}`) }),
      ]);
      expect(allowing(statementsOf("qa", "LaunchPath", "LaunchFunction"), action)).toEqual([
        expect.objectContaining({ Resource: [`${prefix}*`] }),
      ]);
    }
  });

  it("lets the failure function make only the CodeDeploy calls it uses, on the deployment groups in scope", () => {
    const statements = statementsOf("prod", "FailurePath", "DeploymentFailureFunction");
    const codeDeploy = statements.filter((statement) =>
      statement.Action.some((a) => a.startsWith("codedeploy:")),
    );
    expect(codeDeploy.flatMap((statement) => statement.Action).sort()).toEqual(
      [
        "codedeploy:BatchGetDeploymentInstances",
        "codedeploy:BatchGetDeploymentTargets",
        "codedeploy:CreateDeployment",
        "codedeploy:GetApplicationRevision",
        "codedeploy:GetDeployment",
        "codedeploy:GetDeploymentConfig",
        "codedeploy:ListDeploymentInstances",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:ListDeployments",
      ].sort(),
    );
    const groupArns = PROD_PAIRS.map(
      (pair) => `arn:aws:codedeploy:${REGION}:123456789012:deploymentgroup:${pair}`,
    );
    const configs = `arn:aws:codedeploy:${REGION}:123456789012:deploymentconfig:*`;
    expect(allowing(statements, "codedeploy:CreateDeployment")).toEqual([
      expect.objectContaining({ Resource: [...groupArns, configs] }),
    ]);
    expect(allowing(statements, "codedeploy:GetDeployment")).toEqual([
      expect.objectContaining({ Resource: groupArns }),
    ]);
    expect(allowing(statements, "codedeploy:GetDeploymentConfig")).toEqual([
      expect.objectContaining({ Resource: [`arn:aws:codedeploy:${REGION}:123456789012:deploymentconfig:*`] }),
    ]);
    expect(allowing(statements, "codedeploy:GetApplicationRevision")).toEqual([
      expect.objectContaining({
        Resource: ["billing", "catalog"].map(
          (app) => `arn:aws:codedeploy:${REGION}:123456789012:application:${app}`,
        ),
      }),
    ]);
    expect(allowing(statements, "autoscaling:CompleteLifecycleAction")).toEqual([]);
    expect(
      allowing(statementsOf("qa", "FailurePath", "DeploymentFailureFunction"), "codedeploy:CreateDeployment"),
    ).toEqual([
      expect.objectContaining({
        Resource: [
          `arn:aws:codedeploy:${REGION}:123456789012:deploymentgroup:*/*`,
          `arn:aws:codedeploy:${REGION}:123456789012:deploymentconfig:*`,
        ],
      }),
    ]);
  });

  it("lets the launch and failure functions use only the lease table, with the item calls each makes", () => {
    const calls: Record<string, string[]> = {
      // Launch records, marks and breakers: read, then conditional writes.
      LaunchFunction: ["dynamodb:GetItem", "dynamodb:PutItem"],
      // Leases: acquired by a conditional write, released by a conditional delete.
      DeploymentFailureFunction: ["dynamodb:PutItem", "dynamodb:DeleteItem"],
    };
    for (const [stack, id] of FUNCTIONS.slice(0, 2)) {
      const leases = statementsOf("prod", stack, id).filter((statement) =>
        statement.Action.some((action) => action.startsWith("dynamodb:")),
      );
      expect(leases).toEqual([
        expect.objectContaining({
          Action: calls[id],
          Resource: [expect.stringMatching(/^<Import:prod-agentfix-Foundation:.*LeaseTable.*Arn/)],
        }),
      ]);
    }
    const table = resource(template("prod", "Foundation"), "AWS::DynamoDB::Table", "LeaseTable");
    expect(table.Properties).toMatchObject({
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      BillingMode: "PAY_PER_REQUEST",
      TimeToLiveSpecification: { AttributeName: "ttl", Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it("lets the sweep read Auto Scaling and send only to the launch queue", () => {
    const statements = statementsOf("prod", "Sweep", "SweepFunction");
    expect(allowing(statements, "sqs:SendMessage")).toEqual([
      expect.objectContaining({
        Resource: [expect.stringMatching(/^<Import:prod-agentfix-LaunchPath:.*LaunchQueue.*Arn/)],
      }),
    ]);
    const actions = statements.flatMap((statement) => statement.Action);
    expect(actions).not.toContain("ssm:SendCommand");
    expect(actions).not.toContain("autoscaling:CompleteLifecycleAction");
  });

  it("gives each function a role of its own, without managed policies", () => {
    for (const [stack, id] of FUNCTIONS) {
      const t = template("prod", stack);
      const roleId = (fn("prod", stack, id).Properties.Role as { "Fn::GetAtt": string[] })[
        "Fn::GetAtt"
      ][0] as string;
      expect(resource(t, "AWS::IAM::Role", roleId).Properties.ManagedPolicyArns).toBeUndefined();
    }
  });
});

describe("9. observability", () => {
  function alarms(stage: string) {
    const t = template(stage, "Monitoring");
    return resources(t, "AWS::CloudWatch::Alarm").map(
      (alarm) => flatten(alarm.Properties, t) as Record<string, unknown>,
    );
  }

  it("alarms as soon as a message reaches either dead-letter queue", () => {
    const depth = alarms("prod").filter((alarm) => alarm.MetricName === "ApproximateNumberOfMessagesVisible");
    expect(depth.map((alarm) => (alarm.Dimensions as { Value: string }[])[0]?.Value).sort()).toEqual(
      [
        expect.stringMatching(/^<Import:prod-agentfix-FailurePath:.*FailureDeadLetterQueue.*QueueName/),
        expect.stringMatching(/^<Import:prod-agentfix-LaunchPath:.*LaunchDeadLetterQueue.*QueueName/),
      ].sort(),
    );
    for (const alarm of depth) {
      expect(alarm).toMatchObject({
        Namespace: "AWS/SQS",
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
      });
    }
  });

  it("alarms on the errors of every function, on abandoned launches, AMIs that bake an outdated agent and given-up redeploys", () => {
    const all = alarms("prod");
    const errors = all.filter((alarm) => alarm.MetricName === "Errors");
    expect(errors.map((alarm) => (alarm.Dimensions as { Value: string }[])[0]?.Value).sort()).toEqual(
      [
        expect.stringMatching(/DeploymentFailureFunction/),
        expect.stringMatching(/LaunchFunction/),
        expect.stringMatching(/SweepFunction/),
      ].sort(),
    );
    for (const name of ["LaunchAbandoned", "OutdatedAgentInAmi", "RedeployGaveUp"]) {
      expect(all).toContainEqual(
        expect.objectContaining({
          Namespace: "Agentfix",
          MetricName: name,
          // The stage's own datapoints only.
          Dimensions: expect.arrayContaining([
            { Name: "service", Value: "agentfix" },
            { Name: "stage", Value: "prod" },
          ]),
          Statistic: "Sum",
          Threshold: 0,
          ComparisonOperator: "GreaterThanThreshold",
          TreatMissingData: "notBreaching",
        }),
      );
    }
  });

  it("notifies the configured address through an SNS topic, and no one when none is configured", () => {
    const foundation = template("prod", "Foundation");
    const topic = resource(foundation, "AWS::SNS::Topic", "AlarmTopic");
    expect(resource(foundation, "AWS::SNS::Subscription", "AlarmTopic").Properties).toMatchObject({
      Protocol: "email",
      Endpoint: "ops@example.com",
    });
    for (const alarm of alarms("prod")) {
      expect(alarm.AlarmActions).toEqual([
        expect.stringMatching(new RegExp(`^<Import:.*${topic.id.slice(0, 10)}`)),
      ]);
    }
    expect(resources(template("qa", "Foundation"), "AWS::SNS::Topic")).toEqual([]);
    for (const alarm of alarms("qa")) expect(alarm.AlarmActions).toBeUndefined();
  });

  it("draws a dashboard of installs, time to complete, outcomes, redeploys and queue age", () => {
    const t = template("prod", "Monitoring");
    const dashboard = resource(t, "AWS::CloudWatch::Dashboard", "Dashboard");
    expect(dashboard.Properties.DashboardName).toBe("prod-agentfix-dashboard");
    const body = String(flatten(dashboard.Properties.DashboardBody, t));
    for (const metric of [
      "AgentInstallsSent",
      "AgentInstallsSucceeded",
      "AgentInstallsFailed",
      "TimeToComplete",
      "LaunchContinued",
      "LaunchAbandoned",
      "RedeployCreated",
      "RedeployGaveUp",
      "ApproximateAgeOfOldestMessage",
    ]) {
      expect(body).toContain(`"${metric}"`);
    }
  });
});

describe("9b. each stage its own signals, and only what it names", () => {
  it("reads only the stage's metrics in every alarm and dashboard widget", () => {
    for (const stage of ["prod", "qa"]) {
      const t = template(stage, "Monitoring");
      for (const alarm of resources(t, "AWS::CloudWatch::Alarm")) {
        const properties = flatten(alarm.Properties, t) as { Namespace: string; Dimensions: object[] };
        if (properties.Namespace !== "Agentfix") continue;
        expect(properties.Dimensions).toContainEqual({ Name: "stage", Value: stage });
      }
      const body = JSON.parse(
        String(flatten(resource(t, "AWS::CloudWatch::Dashboard", "Dashboard").Properties.DashboardBody, t)),
      ) as { widgets: { properties: { metrics?: unknown[][] } }[] };
      const serviceMetrics = body.widgets
        .flatMap((widget) => widget.properties.metrics ?? [])
        .filter((metric) => metric[0] === "Agentfix");
      expect(serviceMetrics.length).toBeGreaterThan(10);
      for (const metric of serviceMetrics) {
        expect(metric.join(" ")).toContain(`stage ${stage}`);
      }
    }
  });

  it("deploys no launch or failure path for a stage that names neither, only its association", () => {
    const names = synthesized.assoc?.stacks.map((stack) => stack.name).sort();
    expect(names).toEqual(["AgentAssociation", "Foundation"]);
    expect(
      resource(template("assoc", "AgentAssociation"), "AWS::SSM::Association", "InstallCodeDeployAgent")
        .Properties,
    ).toMatchObject({ Targets: [{ Key: "tag:Name", Values: ["legacy-web"] }] });
    // A stage that names both deploys all seven stacks.
    expect(synthesized.prod?.stacks).toHaveLength(7);
  });

  it("checks before the deploy that Distributor publishes the package and the pinned version", () => {
    const t = template("prod", "Foundation");
    const [check] = resources(t, PREFLIGHT_RESOURCE_TYPE);
    expect(flatten(check?.Properties, t)).toMatchObject({
      ServiceToken: expect.stringMatching(/^<GetAtt:PreflightFunction.*\.Arn>$/),
      PackageName: "AWSCodeDeployAgent",
      Version: "1.8.1",
    });
    const preflight = fn("prod", "Foundation", "PreflightFunction");
    expect(preflight.Properties).toMatchObject({
      Handler: "index.handler",
      FunctionName: "agentfix-prod-preflight",
      Runtime: "nodejs22.x",
    });
    const roleId = (preflight.Properties.Role as { "Fn::GetAtt": string[] })["Fn::GetAtt"][0] as string;
    expect(allowing(roleStatements(t, roleId), "ssm:DescribeDocument")).toEqual([
      expect.objectContaining({ Resource: [`arn:aws:ssm:${REGION}::document/AWSCodeDeployAgent`] }),
    ]);
    // The latest: only the package is checked.
    const [latest] = resources(template("dev", "Foundation"), PREFLIGHT_RESOURCE_TYPE);
    expect(latest?.Properties).toMatchObject({ PackageName: "AWSCodeDeployAgent", Version: "" });
  });
});

describe("10. console test events", () => {
  const EVENT_FILES = readdirSync(join(import.meta.dirname, "..", "..", "events"));

  it("registers every sample event of each function as a shareable test event", () => {
    const t = template("prod", "ConsoleTestEvents");
    const schemas = resources(t, "AWS::EventSchemas::Schema");
    const registry = resources(t, "Custom::AWS")[0];
    for (const [, , handler] of FUNCTIONS) {
      const prefix = handler.slice("functions/".length, -".handler".length);
      const files = EVENT_FILES.filter((file) => file.startsWith(`${prefix}.`) && file.endsWith(".json"));
      const schema = schemas.find(
        (candidate) => candidate.Properties.SchemaName === `_agentfix-prod-${prefix}-schema`,
      );
      if (files.length === 0) {
        expect(schema).toBeUndefined();
        continue;
      }
      expect(schema?.Properties).toMatchObject({
        RegistryName: "lambda-testevent-schemas",
        Type: "OpenApi3",
      });
      expect(schema?.DependsOn).toContain(registry?.id);
      const content = JSON.parse(String(schema?.Properties.Content));
      expect(content).toMatchObject({ openapi: "3.0.0", paths: {} });
      const examples = content.components.examples as Record<string, { value: unknown }>;
      expect(Object.keys(examples).sort()).toEqual(
        files.map((file) => file.slice(prefix.length + 1, -".json".length)).sort(),
      );
      for (const file of files) {
        const name = file.slice(prefix.length + 1, -".json".length);
        const value = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "events", file), "utf8"));
        // A sample launch event names the stage's own hook, whatever the file says.
        if (value.detail?.LifecycleHookName) value.detail.LifecycleHookName = HOOK;
        expect(examples[name]?.value).toEqual(value);
      }
    }
    expect(schemas.map((schema) => schema.Properties.SchemaName)).toContain("_agentfix-prod-sweep-schema");
  });

  it("creates the test-event registry only when missing and never deletes it", () => {
    const t = template("prod", "ConsoleTestEvents");
    const registry = resources(t, "Custom::AWS")[0];
    const create = JSON.parse(String(registry?.Properties.Create));
    expect(create).toMatchObject({
      service: "Schemas",
      action: "CreateRegistry",
      parameters: { RegistryName: "lambda-testevent-schemas" },
      ignoreErrorCodesMatching: "ConflictException",
    });
    expect(registry?.Properties.Delete).toBeUndefined();
  });
});

describe("11. outputs", () => {
  it("names the functions agentfix-<stage>-<role>, with their logs under /aws/lambda/<name>", () => {
    for (const stage of ["prod", "qa"]) {
      for (const [stack, id, handler] of FUNCTIONS) {
        const name = `agentfix-${stage}-${handler.slice("functions/".length, -".handler".length)}`;
        const { Properties } = fn(stage, stack, id);
        expect(Properties.FunctionName).toBe(name);
        const logGroupId = (Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
        expect(
          resource(template(stage, stack), "AWS::Logs::LogGroup", logGroupId).Properties.LogGroupName,
        ).toBe(`/aws/lambda/${name}`);
      }
    }
  });

  it("publishes the function names, queue URLs and the dashboard URL", () => {
    const outputs = (stack: string) =>
      flatten(
        (template("prod", stack).Outputs ?? {}) as Record<string, unknown>,
        template("prod", stack),
      ) as Record<string, { Value: string }>;
    expect(outputs("LaunchPath").LaunchFunctionName?.Value).toMatch(/^<Ref:LaunchFunction/);
    expect(outputs("LaunchPath").LaunchQueueUrl?.Value).toMatch(
      /^https:\/\/sqs\.us-east-1\.amazonaws\.com\/.*LaunchQueue/,
    );
    expect(outputs("LaunchPath").LaunchDeadLetterQueueUrl?.Value).toMatch(/LaunchDeadLetterQueue/);
    expect(outputs("FailurePath").DeploymentFailureFunctionName?.Value).toMatch(
      /^<Ref:DeploymentFailureFunction/,
    );
    expect(outputs("FailurePath").FailureDeadLetterQueueUrl?.Value).toMatch(/FailureDeadLetterQueue/);
    expect(outputs("Sweep").SweepFunctionName?.Value).toMatch(/^<Ref:SweepFunction/);
    expect(outputs("Monitoring").DashboardUrl?.Value).toBe(
      `https://${REGION}.console.aws.amazon.com/cloudwatch/home?region=${REGION}#dashboards:name=prod-agentfix-dashboard`,
    );
  });
});

describe("checks", () => {
  it("leaves no unsuppressed cdk-nag AwsSolutions finding, and every suppression carries a reason", () => {
    for (const stage of ["prod", "dev", "qa", "assoc"]) {
      expect(
        synthesized[stage]?.nag.map((finding) => `${finding.level} ${finding.path}: ${finding.message}`),
      ).toEqual([]);
      for (const stack of synthesized[stage]?.stacks ?? []) {
        for (const [, entry] of Object.entries(
          (stack.template.Resources ?? {}) as Record<string, Resource>,
        )) {
          const suppressions =
            (entry.Metadata?.cdk_nag as { rules_to_suppress?: { id: string; reason: string }[] } | undefined)
              ?.rules_to_suppress ?? [];
          for (const suppression of suppressions) expect(suppression.reason.length).toBeGreaterThan(40);
        }
      }
    }
  });

  it("passes cfn-lint on every synthesized template", () => {
    const directory = mkdtempSync(join(tmpdir(), "agentfix-templates-"));
    const files: string[] = [];
    for (const [stage, result] of Object.entries(synthesized)) {
      mkdirSync(join(directory, stage));
      for (const stack of result.stacks) {
        const file = join(directory, stage, `${stack.name}.template.json`);
        writeFileSync(file, JSON.stringify(stack.template));
        files.push(file);
      }
    }
    let output: string;
    try {
      // W3005 (a DependsOn that a reference already implies) is emitted by CDK itself.
      output = execFileSync(
        "cfn-lint",
        ["--format", "parseable", "--ignore-checks", "W3005", "--", ...files],
        {
          encoding: "utf8",
        },
      );
    } catch (error) {
      const failure = error as NodeJS.ErrnoException & { stdout?: string; status?: number };
      if (failure.code === "ENOENT") {
        throw new Error("cfn-lint is not on PATH: install it (pip install cfn-lint) to check the templates", {
          cause: error,
        });
      }
      output = failure.stdout ?? String(error);
    }
    expect(output.trim()).toBe("");
    // cfn-lint reads every template of four stages: a busy machine needs more than the default 30 s.
  }, 180_000);
});
