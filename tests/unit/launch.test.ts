import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type CommandInvocation,
  DescribeDocumentCommand,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  type ListCommandInvocationsCommandInput,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
} from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { clearVersionCache } from "../../functions/core/agent/versions.js";
import { clock, setClockScale } from "../../functions/core/common/clock.js";
import { NO_LEASE } from "../../functions/core/common/lease.js";
import { metrics } from "../../functions/core/common/powertools.js";
import { defaultLaunchConfig, type LaunchConfig } from "../../functions/core/config.js";
import {
  agentDocumentNames,
  DISTRIBUTOR_DOCUMENT,
  METRIC,
  RUN_POWERSHELL_SCRIPT_DOCUMENT,
  RUN_SHELL_SCRIPT_DOCUMENT,
} from "../../functions/core/contract.js";
import { clearHookCache } from "../../functions/core/launch/lifecycle.js";
import { type LaunchRequest, reconcileLaunches } from "../../functions/core/launch/reconcile.js";
import { handleLaunch } from "../../functions/launch.js";
import {
  alreadyCurrent,
  autoScalingThrottling,
  checkFailed,
  checkPassed,
  commandSent,
  deploymentInProgress,
  installedAndVerified,
  installedButNotVerified,
  installFailed,
  installLocked,
  invocation,
  launchedFrom,
  launchHook,
  lifecycleStates,
  listed,
  NO_AGENT,
  noActiveLifecycleAction,
  online,
  type Platform,
  publishedPackage,
  running,
  ssmThrottling,
  stopped,
} from "./support/aws-answers.js";
import { fixture, launchEvent, sqsRecord } from "./support/launch-events.js";

// The handler reads its configuration when its module loads: give it a lease table to talk to.
// These tests follow the polling launch path (launch.completion "polling"); event completion is
// tested in launch-events.test.ts.
vi.hoisted(() => {
  process.env.LEASE_TABLE = "agentfix-test-leases";
  process.env.LAUNCH_COMPLETION = "polling";
});

const GROUP = "web-asg";
const HOOK = "agentfix-launch";
/** The stage's own documents (the unit tests run with STAGE=test): the only ones the launch path sends. */
const { install: INSTALL, check: CHECK } = agentDocumentNames("test");
const AGENT_PACKAGE = "AWSCodeDeployAgent";
/** The look for installs sent before (ahead of the engine's own): by document and time, not by command. */
const EARLIER_INSTALLS = { CommandId: undefined };

const ssm = mockClient(SSMClient);
const autoScaling = mockClient(AutoScalingClient);
const dynamodb = mockClient(DynamoDBClient);
const sqs = mockClient(SQSClient);

function context(remainingMs = 600_000): Context {
  const end = clock.now() + remainingMs;
  return { awsRequestId: "req-1", getRemainingTimeInMillis: () => end - clock.now() } as unknown as Context;
}

const request = (instanceId: string, extra: Partial<LaunchRequest> = {}): LaunchRequest => ({
  instanceId,
  group: GROUP,
  hook: HOOK,
  token: `token-${instanceId}`,
  transition: "autoscaling:EC2_INSTANCE_LAUNCHING",
  startedAt: clock.now(),
  source: "event",
  ...extra,
});
/** An instance leaving the warm pool for the group. */
const leavingWarmPool = (instanceId: string) =>
  request(instanceId, { origin: "WarmPool", destination: "AutoScalingGroup" });

const ids = (count: number, offset = 0) =>
  Array.from({ length: count }, (_, index) => `i-${(offset + index).toString(16).padStart(17, "0")}`);

function run(requests: LaunchRequest[], config: Partial<LaunchConfig> = {}, remainingMs = 600_000) {
  return reconcileLaunches(requests, defaultLaunchConfig({ POLL_INTERVAL_MS: 5_000, ...config }), {
    deadline: clock.now() + remainingMs,
    correlationId: "req-1",
    lease: NO_LEASE,
  });
}

/** The SendCommand inputs, of one document or all. */
const sent = (document?: string) =>
  ssm
    .commandCalls(SendCommandCommand)
    .map((call) => call.args[0].input)
    .filter((input) => !document || input.DocumentName === document);
/** The command ids ListCommandInvocations was asked about, in order. */
const polled = () =>
  ssm
    .commandCalls(ListCommandInvocationsCommand)
    .map((call) => call.args[0].input.CommandId)
    .filter((commandId) => commandId !== undefined);
/** The looks for installs sent before: ListCommandInvocations by filters, not by command. */
const earlierInstallLookups = () =>
  ssm
    .commandCalls(ListCommandInvocationsCommand)
    .map((call) => call.args[0].input)
    .filter((input) => input.CommandId === undefined);
const completions = () =>
  autoScaling.commandCalls(CompleteLifecycleActionCommand).map((call) => call.args[0].input);
const heartbeats = () =>
  autoScaling.commandCalls(RecordLifecycleActionHeartbeatCommand).map((call) => call.args[0].input);
const completed = (instanceId: string, result: "CONTINUE" | "ABANDON") => ({
  AutoScalingGroupName: GROUP,
  LifecycleHookName: HOOK,
  LifecycleActionResult: result,
  LifecycleActionToken: `token-${instanceId}`,
});
/** The install document's parameters for the stage's package: the latest, expected at 1.8.1 unless said. */
const installParameters = (expectedVersion = "1.8.1", version = "") => ({
  packageName: [AGENT_PACKAGE],
  version: [version],
  expectedVersion: [expectedVersion],
});
const metricNames = () => vi.mocked(metrics.addMetric).mock.calls.map(([name]) => name);

beforeAll(() => setClockScale(0.0005));
beforeEach(() => {
  // Each test scripts the answers it needs; any other call fails it, naming what was asked.
  const unscripted = (input: object) => {
    throw new Error(`no AWS answer scripted for ${JSON.stringify(input)}`);
  };
  ssm.reset().onAnyCommand().callsFake(unscripted);
  autoScaling.reset().onAnyCommand().callsFake(unscripted);
  dynamodb.reset().onAnyCommand().callsFake(unscripted);
  sqs.reset().onAnyCommand().callsFake(unscripted);
  // The stages here take the latest agent (AGENT_VERSION empty), and Distributor's newest published
  // version of the package is 1.8.1: that is the version every install must leave running.
  ssm.on(DescribeDocumentCommand, { Name: AGENT_PACKAGE }).resolves(publishedPackage(AGENT_PACKAGE, "1.8.1"));
  vi.spyOn(metrics, "addMetric");
});
afterEach(() => {
  clearHookCache();
  clearVersionCache();
  vi.restoreAllMocks();
});
afterAll(() => {
  ssm.restore();
  autoScaling.restore();
  dynamodb.restore();
  sqs.restore();
});

describe("launch path", () => {
  it("installs, verifies and continues a new instance", async () => {
    const ID = "i-0000000000000000a";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolvesOnce(listed(invocation("install-1", ID, "InProgress")))
      .resolves(listed(installedAndVerified("install-1", ID, "1.8.1")));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome).toMatchObject({ outcome: "CONTINUE", agentVersion: "1.8.1" });
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
    // One command installs and verifies: nothing else is sent.
    expect(sent()).toEqual([
      expect.objectContaining({
        DocumentName: INSTALL,
        InstanceIds: [ID],
        Parameters: installParameters("1.8.1"),
        Comment: "agentfix install req-1",
      }),
    ]);
    expect(polled()).toEqual(["install-1", "install-1"]);
    // The steps' output is only listed with Details.
    expect(
      ssm
        .commandCalls(ListCommandInvocationsCommand, { CommandId: "install-1" })
        .map((call) => call.args[0].input.Details),
    ).toEqual([true, true]);
  });

  it("waits for a late SSM registration instead of failing", async () => {
    const ID = "i-0000000000000000b";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce(online([]))
      .resolvesOnce(online([]))
      .resolvesOnce(online([]))
      .resolvesOnce(online([]))
      .resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(ssm.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(5);
    expect(sent(INSTALL)).toHaveLength(1);
  });

  it("abandons an instance that never registers with SSM", async () => {
    const ID = "i-0000000000000000c";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([]));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)], { REGISTRATION_TIMEOUT_SECONDS: 60 });

    expect(outcome).toMatchObject({ outcome: "ABANDON" });
    expect(outcome?.reason).toMatch(/never came Online/);
    expect(sent()).toHaveLength(0);
    expect(completions()).toEqual([completed(ID, "ABANDON")]);
  });

  it("retries an install that fails once and then continues", async () => {
    const ID = "i-0000000000000000d";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm
      .on(SendCommandCommand, { DocumentName: INSTALL })
      .resolvesOnce(commandSent("install-1"))
      .resolves(commandSent("install-2"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installFailed("install-1", ID)));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-2" })
      .resolves(listed(installedAndVerified("install-2", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.installCommandIds).toEqual(["install-1", "install-2"]);
    expect(sent(INSTALL)).toHaveLength(2);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it("abandons the instance when the install fails every time", async () => {
    const ID = "i-0000000000000000e";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm
      .on(SendCommandCommand, { DocumentName: INSTALL })
      .resolvesOnce(commandSent("install-1"))
      .resolves(commandSent("install-2"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installFailed("install-1", ID)));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-2" })
      .resolves(listed(installFailed("install-2", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)], { INSTALL_ATTEMPTS: 2 });

    expect(outcome?.outcome).toBe("ABANDON");
    expect(outcome?.reason).toMatch(/install .*Failed.* after 2 attempt/);
    // The step that failed says why, not the steps skipped after it.
    expect(outcome?.reason).toContain("failed to download the agent package");
    expect(sent(INSTALL)).toHaveLength(2);
    expect(sent(CHECK)).toHaveLength(0);
    expect(completions()).toEqual([completed(ID, "ABANDON")]);
  });

  it("applies the failure result when the install reports Success but the agent does not run", async () => {
    const ID = "i-0000000000000000f";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    // Distributor says Success; the verify step of the same invocation finds the agent stopped.
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedButNotVerified("install-1", ID, stopped("1.8.1"))));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)], { FAILURE_RESULT: "ABANDON" });

    expect(outcome?.outcome).toBe("ABANDON");
    expect(outcome?.reason).toMatch(/reported Success but the agent is stopped/);
    expect(sent()).toHaveLength(1);
    expect(completions()).toEqual([completed(ID, "ABANDON")]);
  });

  it("completes with CONTINUE on failure when FAILURE_RESULT says so", async () => {
    const ID = "i-00000000000000010";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedButNotVerified("install-1", ID, stopped("1.8.1"))));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)], { FAILURE_RESULT: "CONTINUE" });

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.reason).toMatch(/agent is stopped.*FAILURE_RESULT/);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it("fails verification when a pinned version is not the one running", async () => {
    const ID = "i-00000000000000011";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedButNotVerified("install-1", ID, running("1.7.1"), { version: "1.8.1" })));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)], { AGENT_VERSION: "1.8.1" });

    expect(outcome?.outcome).toBe("ABANDON");
    expect(outcome?.reason).toMatch(/1\.7\.1 is running, but version 1\.8\.1 is pinned/);
    expect(sent(INSTALL)[0]?.Parameters).toEqual(installParameters("1.8.1", "1.8.1"));
    expect(completions()).toEqual([completed(ID, "ABANDON")]);
  });

  it("reports an instance that is no longer waiting as already completed, with no SSM call", async () => {
    const ID = "i-00000000000000012";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "InService"]));

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("ALREADY_COMPLETED");
    expect(outcome?.reason).toMatch(/instance is InService/);
    expect(ssm.calls()).toHaveLength(0);
    expect(completions()).toHaveLength(0);
  });

  it("treats 'No active Lifecycle Action found' on completion as already completed", async () => {
    const ID = "i-00000000000000013";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    // Someone else completed the action while the agent was being set up.
    autoScaling.on(CompleteLifecycleActionCommand).rejects(noActiveLifecycleAction(`token-${ID}`));

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("ALREADY_COMPLETED");
    expect(outcome?.reason).toMatch(/the lifecycle action had already ended/);
    expect(completions()).toHaveLength(1);
  });

  it("stops work on an instance terminated mid-install", async () => {
    const ID = "i-00000000000000014";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolvesOnce(listed(invocation("install-1", ID, "InProgress")))
      .resolves(listed(invocation("install-1", ID, "Failed", { StatusDetails: "Terminated" })));
    autoScaling.on(CompleteLifecycleActionCommand).rejects(noActiveLifecycleAction(`token-${ID}`));

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("ALREADY_COMPLETED");
    expect(sent()).toEqual([expect.objectContaining({ DocumentName: INSTALL })]);
  });

  it("follows an install already in flight instead of sending a second one (duplicate delivery)", async () => {
    const ID = "i-00000000000000015";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(invocation("install-1", ID, "InProgress")));
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).resolves({});

    const sentAt = new Date(clock.now());
    const [first] = await run([request(ID)], {}, 120_000);
    expect(first?.outcome).toBe("PENDING");
    expect(sent(INSTALL)).toHaveLength(1);

    // The duplicate finds install-1 still in flight; it succeeds by the time it is polled.
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(
      listed(
        invocation("install-1", ID, "InProgress", {
          DocumentName: INSTALL,
          Comment: "agentfix install req-1",
          RequestedDateTime: sentAt,
        }),
      ),
    );
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.installCommandIds).toEqual(["install-1"]);
    expect(sent()).toHaveLength(1);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it("looks for installs in flight among the stage's install document only, never another team's Distributor installs", async () => {
    const ID = "i-00000000000000025";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    // Another team's Distributor install (the CloudWatch agent) runs on the instance for a long while.
    const cloudWatchInstall = invocation("cw-install-1", ID, "InProgress", {
      DocumentName: DISTRIBUTOR_DOCUMENT,
      Comment: "install AmazonCloudWatchAgent",
    });
    ssm
      .on(ListCommandInvocationsCommand, EARLIER_INSTALLS)
      .callsFake((input: ListCommandInvocationsCommandInput) => {
        const document = input.Filters?.find((filter) => filter.key === "DocumentName")?.value;
        return listed(...[cloudWatchInstall].filter((item) => !document || item.DocumentName === document));
      });
    ssm.on(ListCommandInvocationsCommand, { CommandId: "cw-install-1" }).resolves(listed(cloudWatchInstall));
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.installCommandIds).toEqual(["install-1"]);
    expect(earlierInstallLookups()).not.toHaveLength(0);
    for (const lookup of earlierInstallLookups()) {
      expect(lookup.Filters?.filter((filter) => filter.key === "DocumentName")).toEqual([
        { key: "DocumentName", value: INSTALL },
      ]);
    }
    expect(polled()).not.toContain("cw-install-1");
  });

  it("retries throttled SSM calls and still completes", async () => {
    const ID = "i-00000000000000016";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm
      .on(SendCommandCommand, { DocumentName: INSTALL })
      .rejectsOnce(ssmThrottling())
      .rejectsOnce(ssmThrottling())
      .rejectsOnce(ssmThrottling())
      .rejectsOnce(ssmThrottling())
      .rejectsOnce(ssmThrottling())
      .resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .rejectsOnce(ssmThrottling())
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(sent(INSTALL)).toHaveLength(6);
    expect(polled()).toEqual(["install-1", "install-1"]);
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.reason).toMatch(/installed by command install-1/);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it("leaves a verified instance pending, not failed, when its completion stays throttled", async () => {
    const ID = "i-0000000000000001f";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).rejects(autoScalingThrottling());

    // Verified within the first minute; the completion is retried for the rest of the budget.
    const [outcome] = await run([request(ID)], {}, 300_000);

    expect(outcome?.outcome).toBe("PENDING");
    expect(outcome?.reason).toMatch(
      /agent 1\.8\.1 running; completing the lifecycle action \(CONTINUE\) stayed throttled/,
    );
    expect(completions().length).toBeGreaterThan(1);
  });

  it("ignores groups out of scope", async () => {
    const ID = "i-00000000000000017";

    const [outcome] = await run([request(ID, { group: "db-asg" })], { TARGET_GROUPS: ["web-asg"] });

    expect(outcome).toMatchObject({
      outcome: "SKIPPED",
      reason: "group db-asg is not in scope (TARGET_GROUPS)",
    });
    expect(autoScaling.calls()).toHaveLength(0);
    expect(ssm.calls()).toHaveLength(0);
  });

  it("sends 60 instances in two install commands and polls per command", async () => {
    const instanceIds = ids(60, 0x100);
    const [first, rest] = [instanceIds.slice(0, 50), instanceIds.slice(50)];
    const waiting = (group: string[]) =>
      lifecycleStates(GROUP, ...group.map((id): [string, string] => [id, "Pending:Wait"]));
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling.on(DescribeAutoScalingInstancesCommand, { InstanceIds: first }).resolves(waiting(first));
    autoScaling.on(DescribeAutoScalingInstancesCommand, { InstanceIds: rest }).resolves(waiting(rest));
    ssm
      .on(DescribeInstanceInformationCommand, { Filters: [{ Key: "InstanceIds", Values: first }] })
      .resolves(online(first));
    ssm
      .on(DescribeInstanceInformationCommand, { Filters: [{ Key: "InstanceIds", Values: rest }] })
      .resolves(online(rest));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm
      .on(SendCommandCommand, { DocumentName: INSTALL })
      .resolvesOnce(commandSent("install-1"))
      .resolvesOnce(commandSent("install-2"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(...first.map((id) => installedAndVerified("install-1", id))));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-2" })
      .resolves(listed(...rest.map((id) => installedAndVerified("install-2", id))));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const outcomes = await run(instanceIds.map((id) => request(id)));

    expect(outcomes.map((outcome) => outcome.outcome)).toEqual(instanceIds.map(() => "CONTINUE"));
    expect(sent().map((input) => [input.DocumentName, input.InstanceIds])).toEqual([
      [INSTALL, first],
      [INSTALL, rest],
    ]);
    expect(polled().sort()).toEqual(["install-1", "install-2"]);
    expect(completions()).toHaveLength(60);
  });

  it("leaves unfinished instances pending, heartbeated, when the time budget runs out", async () => {
    const ID = "i-00000000000000018";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(invocation("install-1", ID, "InProgress")));
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).resolves({});

    const [outcome] = await run([request(ID)], {}, 30_000);

    expect(outcome?.outcome).toBe("PENDING");
    expect(outcome?.reason).toMatch(/when the time budget ran out; resumes on the next delivery/);
    expect(heartbeats()).toEqual([
      { AutoScalingGroupName: GROUP, LifecycleHookName: HOOK, LifecycleActionToken: `token-${ID}` },
    ]);
    expect(completions()).toHaveLength(0);
  });

  it("heartbeats a long wait once half the heartbeat timeout has passed", async () => {
    const ID = "i-00000000000000019";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK, 300));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    // The first poll waits 20 s and a quiet command's polls back off to one every 10 s: 20 polls in
    // progress keep the install running past 180 s, well beyond half the 300 s heartbeat timeout.
    const installPolls = ssm.on(ListCommandInvocationsCommand, { CommandId: "install-1" });
    for (let poll = 0; poll < 20; poll += 1)
      installPolls.resolvesOnce(listed(invocation("install-1", ID, "InProgress")));
    installPolls.resolves(listed(installedAndVerified("install-1", ID)));
    const beatsAt: number[] = [];
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).callsFake(() => {
      beatsAt.push(clock.now());
      return {};
    });
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const start = clock.now();
    const [outcome] = await run([request(ID, { startedAt: start })], {}, 1_500_000);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(beatsAt.length).toBeGreaterThanOrEqual(1);
    expect(beatsAt[0]! - start).toBeGreaterThanOrEqual(150_000);
    expect(heartbeats()[0]).toEqual({
      AutoScalingGroupName: GROUP,
      LifecycleHookName: HOOK,
      LifecycleActionToken: `token-${ID}`,
    });
  });

  it("sends nothing to SSM in DRY_RUN and completes the launch with CONTINUE", async () => {
    const ID = "i-0000000000000001a";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)], { DRY_RUN: true });

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.reason).toMatch(
      /dry run: would install AWSCodeDeployAgent .*completed CONTINUE so the launch is not held/,
    );
    expect(sent()).toHaveLength(0);
    // A dry run holds no launch: its action is completed at once, and never heartbeated.
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
    expect(heartbeats()).toHaveLength(0);
  });

  it("installs on the way into the warm pool", async () => {
    const ID = "i-0000000000000001b";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Warmed:Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID, { origin: "EC2", destination: "WarmPool" })]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(sent()).toEqual([expect.objectContaining({ DocumentName: INSTALL })]);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it("only verifies on the way out of the warm pool when the agent is current", async () => {
    const ID = "i-0000000000000001c";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(SendCommandCommand, { DocumentName: CHECK }).resolves(commandSent("check-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "check-1" })
      .resolves(listed(checkPassed("check-1", ID, "1.8.1")));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([leavingWarmPool(ID)]);

    expect(outcome).toMatchObject({ outcome: "CONTINUE", agentVersion: "1.8.1" });
    expect(sent()).toEqual([
      expect.objectContaining({
        DocumentName: CHECK,
        InstanceIds: [ID],
        Parameters: { expectedVersion: ["1.8.1"] },
        Comment: "agentfix verify req-1",
      }),
    ]);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it.each([
    ["missing", NO_AGENT],
    ["stopped", stopped("1.8.1")],
  ])("reinstalls on the way out of the warm pool when the agent is %s", async (_, agent) => {
    const ID = "i-0000000000000001d";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(SendCommandCommand, { DocumentName: CHECK }).resolves(commandSent("check-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "check-1" })
      .resolves(listed(checkFailed("check-1", ID, agent)));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID, "1.8.1", { before: agent })));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([leavingWarmPool(ID)]);

    expect(outcome).toMatchObject({ outcome: "CONTINUE", agentVersion: "1.8.1" });
    // The install document verifies too: no second check follows it.
    expect(sent().map((input) => input.DocumentName)).toEqual([CHECK, INSTALL]);
    expect(polled()).toEqual(["check-1", "install-1"]);
  });

  it("sends Windows instances the same install document as Linux ones, in one command", async () => {
    const [LINUX, WINDOWS] = ["i-0000000000000001e", "i-00000000000000020"];
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [LINUX, WINDOWS] })
      .resolves(lifecycleStates(GROUP, [LINUX, "Pending:Wait"], [WINDOWS, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves({
      InstanceInformationList: [
        ...(online([LINUX], "Linux").InstanceInformationList ?? []),
        ...(online([WINDOWS], "Windows").InstanceInformationList ?? []),
      ],
    });
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    // The document's steps choose the platform: the Windows instance ran the PowerShell ones.
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(
        listed(
          installedAndVerified("install-1", LINUX, "1.8.1"),
          installedAndVerified("install-1", WINDOWS, "1.8.1", { platform: "Windows" }),
        ),
      );
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const outcomes = await run([request(LINUX), request(WINDOWS)]);

    expect(outcomes).toMatchObject([
      { instanceId: LINUX, outcome: "CONTINUE", agentVersion: "1.8.1" },
      { instanceId: WINDOWS, outcome: "CONTINUE", agentVersion: "1.8.1" },
    ]);
    expect(sent()).toEqual([
      expect.objectContaining({
        DocumentName: INSTALL,
        InstanceIds: [LINUX, WINDOWS],
        Parameters: installParameters("1.8.1"),
      }),
    ]);
    expect(sent(RUN_POWERSHELL_SCRIPT_DOCUMENT)).toHaveLength(0);
  });

  it("never sends AWS-RunShellScript, AWS-RunPowerShellScript or AWS-ConfigureAWSPackage", async () => {
    // A fresh Linux launch, a fresh Windows launch whose first install fails, and a Windows instance
    // leaving the warm pool with its agent stopped: every kind of command the launch path sends.
    const [LINUX, WINDOWS, WARM] = ["i-00000000000000200", "i-00000000000000201", "i-00000000000000202"];
    const platforms = new Map<string, Platform>([
      [LINUX, "Linux"],
      [WINDOWS, "Windows"],
      [WARM, "Windows"],
    ]);
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand)
      .resolves(
        lifecycleStates(GROUP, [LINUX, "Pending:Wait"], [WINDOWS, "Pending:Wait"], [WARM, "Pending:Wait"]),
      );
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => ({
      InstanceInformationList: (input.Filters?.[0]?.Values ?? []).flatMap(
        (id: string) => online([id], platforms.get(id)).InstanceInformationList ?? [],
      ),
    }));
    // A stand-in for the instances: what each command does there depends on its document.
    const commands = new Map<string, SendCommandCommandInput>();
    const installsOn = new Map<string, number>();
    ssm.on(SendCommandCommand).callsFake((input: SendCommandCommandInput) => {
      const commandId = `command-${commands.size + 1}`;
      commands.set(commandId, input);
      return commandSent(commandId);
    });
    ssm.on(ListCommandInvocationsCommand).callsFake((input: ListCommandInvocationsCommandInput) => {
      const commandId = input.CommandId;
      if (commandId === undefined) return listed();
      const command = commands.get(commandId);
      const answers = (command?.InstanceIds ?? []).map((id): CommandInvocation => {
        const platform = platforms.get(id) ?? "Linux";
        if (command?.DocumentName === CHECK) return checkFailed(commandId, id, stopped("1.8.1"), platform);
        // Any other document fails here; the assertions below name it.
        if (command?.DocumentName !== INSTALL) return invocation(commandId, id, "Failed");
        const attempt = (installsOn.get(id) ?? 0) + 1;
        installsOn.set(id, attempt);
        return id === WINDOWS && attempt === 1
          ? installFailed(commandId, id, { platform })
          : installedAndVerified(commandId, id, "1.8.1", { platform });
      });
      return listed(...answers);
    });
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const outcomes = await run([request(LINUX), request(WINDOWS), leavingWarmPool(WARM)]);

    expect(outcomes.map((outcome) => outcome.outcome)).toEqual(["CONTINUE", "CONTINUE", "CONTINUE"]);
    const documents = sent().map((input) => input.DocumentName);
    expect(new Set(documents)).toEqual(new Set([INSTALL, CHECK]));
    for (const document of [RUN_SHELL_SCRIPT_DOCUMENT, RUN_POWERSHELL_SCRIPT_DOCUMENT, DISTRIBUTOR_DOCUMENT])
      expect(documents).not.toContain(document);
  });

  it.each([
    [
      "a deployment runs",
      (commandId: string, id: string) =>
        deploymentInProgress(commandId, id, "d-EXAMPLE111", { before: running("1.7.1") }),
    ],
    [
      "another install of the package runs",
      (commandId: string, id: string) => installLocked(commandId, id, { before: running("1.7.1") }),
    ],
  ])(
    "waits about 30 s while %s on the instance, then installs without using up an attempt",
    async (_, busy) => {
      const ID = "i-00000000000000021";
      autoScaling
        .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
        .resolves(launchHook(GROUP, HOOK));
      autoScaling
        .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
        .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
      ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
      ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
      const sendsAt: number[] = [];
      ssm.on(SendCommandCommand, { DocumentName: INSTALL }).callsFake(() => {
        sendsAt.push(clock.now());
        return commandSent(`install-${sendsAt.length}`);
      });
      let busySeenAt = 0;
      ssm.on(ListCommandInvocationsCommand, { CommandId: "install-1" }).callsFake(() => {
        busySeenAt ||= clock.now();
        return listed(busy("install-1", ID));
      });
      // Then one ordinary failure: with INSTALL_ATTEMPTS 2 it is retried only if the wait cost no attempt.
      ssm
        .on(ListCommandInvocationsCommand, { CommandId: "install-2" })
        .resolves(listed(installFailed("install-2", ID, { before: running("1.7.1") })));
      ssm
        .on(ListCommandInvocationsCommand, { CommandId: "install-3" })
        .resolves(listed(installedAndVerified("install-3", ID, "1.8.1", { before: running("1.7.1") })));
      autoScaling.on(CompleteLifecycleActionCommand).resolves({});

      const [outcome] = await run([request(ID)], { INSTALL_ATTEMPTS: 2 });

      expect(outcome).toMatchObject({ outcome: "CONTINUE", agentVersion: "1.8.1" });
      expect(outcome?.installCommandIds).toEqual(["install-1", "install-2", "install-3"]);
      expect(sendsAt[1]! - busySeenAt).toBeGreaterThanOrEqual(30_000);
      expect(sendsAt[1]! - busySeenAt).toBeLessThan(60_000);
      expect(completions()).toEqual([completed(ID, "CONTINUE")]);
    },
  );

  it("continues an instance whose agent already runs at the expected version, installing nothing", async () => {
    const ID = "i-00000000000000022";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(alreadyCurrent("install-1", ID, "1.8.1")));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.reason).toMatch(/agent 1\.8\.1 already runs at the expected version; nothing installed/);
    expect(outcome?.agentVersion).toBe("1.8.1");
    expect(outcome?.bakedAgent).toBeUndefined();
    expect(sent()).toHaveLength(1);
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
    expect(metricNames()).toContain(METRIC.verified);
    expect(metricNames()).not.toContain(METRIC.installsSucceeded);
  });

  it("names the AMI and launch template of a fresh instance that started an outdated agent at boot", async () => {
    const ID = "i-00000000000000023";
    const AMI = "ami-0abcdef1234567890";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling.on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] }).resolves(
      launchedFrom(GROUP, ID, "Pending:Wait", AMI, {
        LaunchTemplateId: "lt-0123456789abcdef0",
        LaunchTemplateName: "web",
        Version: "7",
      }),
    );
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID, "1.8.1", { before: running("1.6.0") })));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const [outcome] = await run([request(ID)]);

    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.bakedAgent).toEqual({
      imageId: AMI,
      launchTemplate: "web version 7",
      agentVersion: "1.6.0",
      expectedVersion: "1.8.1",
      fix: expect.stringContaining(`${AMI} starts CodeDeploy agent 1.6.0 at boot`),
    });
    expect(metricNames().filter((name) => name === METRIC.outdatedAgentInAmi)).toHaveLength(1);
  });

  it("expects the newest published version on a stage taking the latest, and reinstalls an older agent leaving the warm pool", async () => {
    const [FRESH, WARM] = ["i-00000000000000024", "i-00000000000000026"];
    ssm
      .on(DescribeDocumentCommand, { Name: AGENT_PACKAGE })
      .resolves(publishedPackage(AGENT_PACKAGE, "1.8.1"));
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [FRESH, WARM] })
      .resolves(lifecycleStates(GROUP, [FRESH, "Pending:Wait"], [WARM, "Pending:Wait"]));
    ssm
      .on(DescribeInstanceInformationCommand, { Filters: [{ Key: "InstanceIds", Values: [FRESH] }] })
      .resolves(online([FRESH]));
    ssm
      .on(DescribeInstanceInformationCommand, { Filters: [{ Key: "InstanceIds", Values: [WARM] }] })
      .resolves(online([WARM]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm
      .on(SendCommandCommand, { DocumentName: INSTALL, InstanceIds: [FRESH] })
      .resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", FRESH, "1.8.1")));
    // The warm instance's agent runs, at 1.6.0: the check against 1.8.1 fails, so it is reinstalled.
    ssm.on(SendCommandCommand, { DocumentName: CHECK }).resolves(commandSent("check-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "check-1" })
      .resolves(listed(checkFailed("check-1", WARM, running("1.6.0"))));
    ssm
      .on(SendCommandCommand, { DocumentName: INSTALL, InstanceIds: [WARM] })
      .resolves(commandSent("install-2"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-2" })
      .resolves(listed(installedAndVerified("install-2", WARM, "1.8.1", { before: running("1.6.0") })));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const outcomes = await run([request(FRESH), leavingWarmPool(WARM)], { AGENT_VERSION: "" });

    expect(outcomes).toMatchObject([
      { instanceId: FRESH, outcome: "CONTINUE", agentVersion: "1.8.1" },
      { instanceId: WARM, outcome: "CONTINUE", agentVersion: "1.8.1", installCommandIds: ["install-2"] },
    ]);
    expect(sent(INSTALL).map((input) => input.Parameters)).toEqual([
      installParameters("1.8.1"),
      installParameters("1.8.1"),
    ]);
    expect(sent(CHECK).map((input) => input.Parameters)).toEqual([{ expectedVersion: ["1.8.1"] }]);
  });
});

describe("launch handler", () => {
  /** The lease table takes every lease and its release (no other invocation holds the instances). */
  function leasesFree() {
    dynamodb.on(PutItemCommand, { TableName: "agentfix-test-leases" }).resolves({});
    dynamodb.on(DeleteItemCommand, { TableName: "agentfix-test-leases" }).resolves({});
  }

  it("handles a raw EventBridge event pasted into the console", async () => {
    const ID = "i-1234567890abcdef0";
    leasesFree();
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const report = await handleLaunch(launchEvent(ID), context());

    expect(report.instances).toMatchObject([{ instanceId: ID, outcome: "CONTINUE" }]);
    expect(report.batchItemFailures).toBeUndefined();
    expect(completions()).toEqual([completed(ID, "CONTINUE")]);
  });

  it("completes by instance id on replay, resolving the group's one hook", async () => {
    const ID = "i-1234567890abcdef1";
    leasesFree();
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    // A replay carries no start: the group's scaling activities give it (none kept here), and a
    // heartbeat by instance id confirms that our action is still open.
    autoScaling
      .on(DescribeScalingActivitiesCommand, { AutoScalingGroupName: GROUP })
      .resolves({ Activities: [] });
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).resolves({});
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});

    const report = await handleLaunch({ instanceIds: [ID], autoScalingGroupName: GROUP }, context());

    expect(report.instances).toMatchObject([{ outcome: "CONTINUE", lifecycleHookName: HOOK }]);
    expect(completions()).toEqual([
      {
        AutoScalingGroupName: GROUP,
        LifecycleHookName: HOOK,
        LifecycleActionResult: "CONTINUE",
        InstanceId: ID,
      },
    ]);
  });

  it("processes the good records of a batch and fails only the malformed one", async () => {
    const ID = "i-1234567890abcdef2";
    leasesFree();
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(installedAndVerified("install-1", ID)));
    autoScaling.on(CompleteLifecycleActionCommand).resolves({});
    const bad = launchEvent("i-1234567890abcdef3");
    bad.detail.EC2InstanceId = "i-1;rm -rf /";
    delete bad.detail.LifecycleActionToken;

    const report = await handleLaunch(
      {
        Records: [
          sqsRecord("m-good", launchEvent(ID)),
          sqsRecord("m-bad", bad),
          sqsRecord("m-test", fixture("autoscaling-test-notification.lifecycle-hook-sns-sqs.json")),
        ],
      },
      context(),
    );

    expect(report.instances).toMatchObject([{ instanceId: ID, outcome: "CONTINUE" }]);
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-bad" }]);
    expect(report.failedRecords?.[0]?.error).toMatch(
      /detail\.EC2InstanceId.*detail\.LifecycleActionToken|detail\.LifecycleActionToken.*detail\.EC2InstanceId/,
    );
    expect(report.skippedRecords).toEqual([{ messageId: "m-test", reason: "autoscaling:TEST_NOTIFICATION" }]);
    expect(
      JSON.stringify([...ssm.calls(), ...autoScaling.calls()].map((call) => call.args[0].input)),
    ).not.toContain("rm -rf");
  });

  it("returns unfinished instances as batch item failures, handed back to the queue to resume soon", async () => {
    const ID = "i-1234567890abcdef4";
    leasesFree();
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    ssm.on(DescribeInstanceInformationCommand).resolves(online([ID]));
    ssm.on(ListCommandInvocationsCommand, EARLIER_INSTALLS).resolves(listed());
    ssm.on(SendCommandCommand, { DocumentName: INSTALL }).resolves(commandSent("install-1"));
    ssm
      .on(ListCommandInvocationsCommand, { CommandId: "install-1" })
      .resolves(listed(invocation("install-1", ID, "InProgress")));
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).resolves({});
    sqs.on(ChangeMessageVisibilityCommand).resolves({});

    const report = await handleLaunch({ Records: [sqsRecord("m-slow", launchEvent(ID))] }, context(60_000));

    expect(report.instances[0]?.outcome).toBe("PENDING");
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-slow" }]);
    expect(sqs.commandCalls(ChangeMessageVisibilityCommand).map((call) => call.args[0].input)).toEqual([
      {
        QueueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-launch",
        ReceiptHandle: "receipt-m-slow",
        VisibilityTimeout: 10,
      },
    ]);
    expect(completions()).toHaveLength(0);
  });

  it("leaves an instance another invocation holds to the visibility timeout", async () => {
    const ID = "i-1234567890abcdef7";
    autoScaling
      .on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: GROUP })
      .resolves(launchHook(GROUP, HOOK));
    autoScaling
      .on(DescribeAutoScalingInstancesCommand, { InstanceIds: [ID] })
      .resolves(lifecycleStates(GROUP, [ID, "Pending:Wait"]));
    dynamodb
      .on(PutItemCommand, { TableName: "agentfix-test-leases" })
      .rejects(
        new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} }),
      );

    const report = await handleLaunch({ Records: [sqsRecord("m-busy", launchEvent(ID))] }, context());

    expect(report.instances[0]).toMatchObject({ outcome: "PENDING", busyElsewhere: true });
    expect(report.batchItemFailures).toEqual([{ itemIdentifier: "m-busy" }]);
    expect(dynamodb.commandCalls(PutItemCommand)[0]?.args[0].input.Item?.pk).toEqual({ S: `agent#${ID}` });
    expect(sqs.commandCalls(ChangeMessageVisibilityCommand)).toHaveLength(0);
    expect(ssm.calls()).toHaveLength(0);
  });

  it("skips non-launch transitions", async () => {
    const ID = "i-1234567890abcdef5";

    const report = await handleLaunch(
      launchEvent(ID, { LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING" }),
      context(),
    );

    expect(report.instances[0]).toMatchObject({
      outcome: "SKIPPED",
      reason: expect.stringMatching(/not a launch/),
    });
    expect(autoScaling.calls()).toHaveLength(0);
    expect(ssm.calls()).toHaveLength(0);
  });

  it("rejects a malformed console event with one error naming every bad field", async () => {
    const event = launchEvent("i-1234567890abcdef6");
    event.detail.EC2InstanceId = 42;
    event.detail.AutoScalingGroupName = "";

    await expect(handleLaunch(event, context())).rejects.toThrow(
      /detail\.AutoScalingGroupName.*detail\.EC2InstanceId|detail\.EC2InstanceId.*detail\.AutoScalingGroupName/,
    );
    await expect(handleLaunch({ instanceIds: ["nope"] }, context())).rejects.toThrow(
      /instanceIds\.0.*autoScalingGroupName/,
    );
    expect(ssm.calls()).toHaveLength(0);
    expect(autoScaling.calls()).toHaveLength(0);
  });
});
