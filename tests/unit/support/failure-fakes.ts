// The failure path's AWS stand-ins for unit tests: stateful fakes of CodeDeploy and SSM behind
// aws-sdk-client-mock, answer shapes from the API references, and the harness that runs
// repairFailedDeployment against them (the real agent engine runs, so upgrades are SendCommand /
// ListCommandInvocations round trips). `useFailureHarness()` resets them before each test.
import {
  BatchGetDeploymentInstancesCommand,
  BatchGetDeploymentTargetsCommand,
  CodeDeployClient,
  CreateDeploymentCommand,
  type CreateDeploymentInput,
  type DeploymentInfo,
  DeploymentLimitExceededException,
  GetDeploymentCommand,
  type InstanceTarget,
  InvalidDeploymentIdException,
  type LifecycleEvent,
  ListDeploymentInstancesCommand,
  ListDeploymentsCommand,
  ListDeploymentTargetsCommand,
} from "@aws-sdk/client-codedeploy";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type CommandInvocation,
  type CommandPlugin,
  DescribeInstanceInformationCommand,
  GetDocumentCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, type MockInstance, vi } from "vitest";
import { installDocumentContent } from "../../../functions/core/agent/documents.js";
import { clearVersionCache } from "../../../functions/core/agent/settings.js";
import { isAcceptable } from "../../../functions/core/agent/verified.js";
import { type Lease, NO_LEASE } from "../../../functions/core/common/lease.js";
import { metrics } from "../../../functions/core/common/powertools.js";
import { defaultFailureConfig, type FailureConfig } from "../../../functions/core/config.js";
import { INSTALL_STEPS, installDocumentName } from "../../../functions/core/contract.js";
import { repairFailedDeployment } from "../../../functions/core/failure/run.js";

export const codeDeploy = mockClient(CodeDeployClient);
export const ssm = mockClient(SSMClient);
export const dynamodb = mockClient(DynamoDBClient);
export const sqs = mockClient(SQSClient);

export const APP = "web-app";
export const GROUP = "web-dg";
export const LATEST_AGENT = "1.8.1";
export const OUR_INSTALL_DOCUMENT = installDocumentName("test");
export const MINUTE = 60_000;

export const REVISION = {
  revisionType: "S3" as const,
  s3Location: { bucket: "artifacts", key: "web/app-42.zip", bundleType: "zip" as const, eTag: "abc123" },
};

// --- CodeDeploy stand-in ----------------------------------------------------------------------

export interface FakeDeployment {
  info: DeploymentInfo;
  targets: InstanceTarget[];
  /** ListDeploymentTargets answers InvalidDeploymentIdException; the instances API still works. */
  targetsUnavailable?: boolean;
  /** ListDeploymentTargets answers an empty list; the instances API still lists the instances. */
  targetsEmpty?: boolean;
}

export class FakeCodeDeploy {
  readonly deployments = new Map<string, FakeDeployment>();
  readonly created: CreateDeploymentInput[] = [];
  limitExceeded = false;
  private counter = 0;

  constructor() {
    codeDeploy.on(GetDeploymentCommand).callsFake(({ deploymentId }) => {
      const deployment = this.deployments.get(deploymentId);
      if (!deployment)
        throw new InvalidDeploymentIdException({ message: "no such deployment", $metadata: {} });
      return { deploymentInfo: deployment.info };
    });
    codeDeploy.on(ListDeploymentsCommand).callsFake((input) => {
      const start: Date | undefined = input.createTimeRange?.start;
      const statuses: string[] | undefined = input.includeOnlyStatuses;
      const ids = [...this.deployments.values()]
        .filter(({ info }) => info.applicationName === input.applicationName)
        .filter(({ info }) => info.deploymentGroupName === input.deploymentGroupName)
        .filter(({ info }) => !start || (info.createTime?.getTime() ?? 0) >= start.getTime())
        .filter(({ info }) => !statuses || statuses.includes(info.status ?? ""))
        .sort((a, b) => (b.info.createTime?.getTime() ?? 0) - (a.info.createTime?.getTime() ?? 0))
        .map(({ info }) => info.deploymentId ?? "");
      return page(ids, input.nextToken, 10, (deployments, nextToken) => ({ deployments, nextToken }));
    });
    codeDeploy.on(ListDeploymentTargetsCommand).callsFake((input) => {
      const deployment = this.require(input.deploymentId);
      if (deployment.targetsUnavailable) {
        throw new InvalidDeploymentIdException({ message: "targets unavailable", $metadata: {} });
      }
      const ids = deployment.targetsEmpty
        ? []
        : this.filteredTargets(deployment, input.targetFilters?.TargetStatus);
      return page(ids, input.nextToken, 20, (targetIds, nextToken) => ({ targetIds, nextToken }));
    });
    codeDeploy.on(BatchGetDeploymentTargetsCommand).callsFake((input) => {
      if (input.targetIds.length > 25) throw new Error("BatchGetDeploymentTargets takes at most 25 ids");
      const deployment = this.require(input.deploymentId);
      return {
        deploymentTargets: deployment.targets
          .filter((target) => input.targetIds.includes(target.targetId))
          .map((instanceTarget) => ({ deploymentTargetType: "InstanceTarget", instanceTarget })),
      };
    });
    codeDeploy.on(ListDeploymentInstancesCommand).callsFake((input) => {
      const deployment = this.require(input.deploymentId);
      const ids = this.filteredTargets(deployment, input.instanceStatusFilter);
      return page(ids, input.nextToken, 20, (instancesList, nextToken) => ({ instancesList, nextToken }));
    });
    codeDeploy.on(BatchGetDeploymentInstancesCommand).callsFake((input) => {
      if (input.instanceIds.length > 25) throw new Error("BatchGetDeploymentInstances takes at most 25 ids");
      const deployment = this.require(input.deploymentId);
      return {
        instancesSummary: deployment.targets
          .filter((target) => input.instanceIds.includes(target.targetId))
          .map((target) => ({
            deploymentId: input.deploymentId,
            instanceId: `arn:aws:ec2:us-east-1:123456789012:instance/${target.targetId}`,
            status: target.status,
            lifecycleEvents: target.lifecycleEvents,
          })),
      };
    });
    codeDeploy.on(CreateDeploymentCommand).callsFake((input: CreateDeploymentInput) => {
      if (this.limitExceeded) {
        throw new DeploymentLimitExceededException({
          message: "The deployment group web-dg already has an active deployment",
          $metadata: {},
        });
      }
      this.counter += 1;
      const deploymentId = `d-REDEPLOY${this.counter}`;
      this.created.push(input);
      this.add({
        info: {
          ...input,
          deploymentId,
          status: "Created",
          creator: "user",
          createTime: new Date(),
          computePlatform: "Server",
        },
        targets: [],
      });
      return { deploymentId };
    });
  }

  add(deployment: FakeDeployment): void {
    this.deployments.set(deployment.info.deploymentId ?? "", deployment);
  }

  /** The redeployment this service created fails too (as a user deployment of the same revision). */
  fail(deploymentId: string, targets: InstanceTarget[]): void {
    const deployment = this.require(deploymentId);
    deployment.info = {
      ...deployment.info,
      status: "Failed",
      completeTime: new Date(),
      errorInformation: { code: "HEALTH_CONSTRAINTS", message: "too many individual instances failed" },
    };
    deployment.targets = targets.map((target) => ({ ...target, deploymentId }));
  }

  private require(deploymentId: string): FakeDeployment {
    const deployment = this.deployments.get(deploymentId);
    if (!deployment) throw new InvalidDeploymentIdException({ message: "no such deployment", $metadata: {} });
    return deployment;
  }

  private filteredTargets(deployment: FakeDeployment, statuses: string[] | undefined): string[] {
    return deployment.targets
      .filter((target) => !statuses || statuses.includes(target.status ?? ""))
      .map((target) => target.targetId ?? "");
  }
}

function page<T, R>(
  items: T[],
  token: string | undefined,
  size: number,
  shape: (items: T[], next?: string) => R,
): R {
  const start = token ? Number(token) : 0;
  const next = start + size < items.length ? String(start + size) : undefined;
  return shape(items.slice(start, start + size), next);
}

// --- SSM stand-in ----------------------------------------------------------------------------

export interface FakeInstance {
  /** "Online" answers commands; "ConnectionLost" is listed but cannot; "absent" is stopped or terminated. */
  ssm: "Online" | "ConnectionLost" | "absent";
  version: string;
  running: boolean;
}

export class FakeSsm {
  readonly instances = new Map<string, FakeInstance>();
  readonly invocations: (CommandInvocation & { CommandId: string; InstanceId: string })[] = [];
  /** Instances the role may not send commands to: SendCommand answers AccessDeniedException naming one. */
  readonly denied = new Set<string>();
  /** The refusal names no instance (IAM names one resource; other refusals name none). */
  anonymousDenial = false;
  /** Called with each SendCommand request before it is answered (to make the world move meanwhile). */
  onSend?: (input: { DocumentName?: string; InstanceIds?: string[] }) => void;
  /** Called with each DescribeInstanceInformation request before it is answered. */
  onLook?: () => void;
  private counter = 0;

  constructor() {
    // The stage's document as the stack created it: the functions pin its version.
    ssm.on(GetDocumentCommand).callsFake((input) => ({
      Name: input.Name,
      DocumentVersion: "1",
      Content: JSON.stringify(
        installDocumentContent(/^agentfix-(.+)-install-codedeploy-agent$/.exec(input.Name)?.[1] ?? ""),
      ),
    }));
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => {
      this.onLook?.();
      const ids: string[] = input.Filters?.[0]?.Values ?? [];
      return {
        InstanceInformationList: ids
          .filter((id) => this.instances.has(id) && this.instances.get(id)?.ssm !== "absent")
          .map((id) => ({ InstanceId: id, PingStatus: this.instances.get(id)?.ssm, PlatformType: "Linux" })),
      };
    });
    ssm.on(SendCommandCommand).callsFake((input) => {
      this.onSend?.(input);
      const denied = (input.InstanceIds as string[]).find((id) => this.denied.has(id));
      if (denied) throw accessDenied(this.anonymousDenial ? undefined : denied);
      this.counter += 1;
      const commandId = `00000000-0000-0000-0000-${String(this.counter).padStart(12, "0")}`;
      for (const instanceId of input.InstanceIds as string[]) {
        const instance = this.instances.get(instanceId);
        if (instance?.ssm !== "Online") throw new Error(`command sent to unreachable ${instanceId}`);
        const expected = input.Parameters?.expectedVersion?.[0] ?? "";
        const line = (prefix: "BEFORE" | "AGENT") => {
          const state = instance.running ? "running" : instance.version ? "stopped" : "missing";
          const version = instance.version ? `OFFICIAL_${instance.version}-1_rpm` : "";
          return `AGENTFIX_${prefix}_STATUS=${state} AGENTFIX_${prefix}_VERSION=${version}`;
        };
        // The install document (functions/core/agent/documents.ts): skip-if-current, install, verify.
        const plugins: CommandPlugin[] = [
          { Name: INSTALL_STEPS.skipIfCurrentLinux, Status: "Success", Output: `${line("BEFORE")}\n` },
        ];
        if (expected && instance.running && isAcceptable(instance.version, expected)) {
          plugins[0]!.Output += `${line("AGENT")}\nAGENTFIX_ALREADY_CURRENT=${instance.version}\n`;
        } else {
          instance.version = input.Parameters?.version?.[0] || LATEST_AGENT;
          instance.running = true;
          plugins.push({ Name: INSTALL_STEPS.install, Status: "Success", Output: "Successfully installed" });
          plugins.push({ Name: INSTALL_STEPS.verifyLinux, Status: "Success", Output: `${line("AGENT")}\n` });
        }
        this.invocations.push({
          CommandId: commandId,
          InstanceId: instanceId,
          DocumentName: input.DocumentName,
          Comment: input.Comment,
          RequestedDateTime: new Date(),
          Status: "Success",
          StatusDetails: "Success",
          CommandPlugins: plugins,
        });
      }
      return { Command: { CommandId: commandId } };
    });
    ssm.on(ListCommandInvocationsCommand).callsFake((input) => {
      let found = this.invocations;
      if (input.CommandId) found = found.filter((item) => item.CommandId === input.CommandId);
      if (input.InstanceId) found = found.filter((item) => item.InstanceId === input.InstanceId);
      for (const filter of input.Filters ?? []) {
        if (filter.key === "DocumentName") found = found.filter((item) => item.DocumentName === filter.value);
        if (filter.key === "InvokedAfter") {
          const after = Date.parse(filter.value);
          found = found.filter((item) => (item.RequestedDateTime?.getTime() ?? 0) >= after);
        }
      }
      const shown = found.map((item) => (input.Details ? item : { ...item, CommandPlugins: undefined }));
      return page(shown, input.NextToken, 50, (CommandInvocations, NextToken) => ({
        CommandInvocations,
        NextToken,
      }));
    });
  }

  add(instanceId: string, instance: Partial<FakeInstance> = {}): void {
    this.instances.set(instanceId, { ssm: "Online", version: "1.7.1", running: true, ...instance });
  }

  installsOn(instanceId: string): number {
    return this.invocations.filter(
      (item) => item.InstanceId === instanceId && item.DocumentName === OUR_INSTALL_DOCUMENT,
    ).length;
  }

  get installs(): number {
    return this.invocations.filter((item) => item.DocumentName === OUR_INSTALL_DOCUMENT).length;
  }
}

/**
 * What IAM answers when the role's policy does not cover one instance of the request (the
 * ssm:resourceTag condition of stacks/permissions.ts): the whole SendCommand is refused, naming it.
 */
export function accessDenied(instanceId?: string): SSMServiceException {
  const resource = instanceId
    ? ` on resource: arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`
    : "";
  return new SSMServiceException({
    name: "AccessDeniedException",
    $fault: "client",
    message: `User: arn:aws:sts::123456789012:assumed-role/agentfix-test-failure/agentfix-test-deployment-failure is not authorized to perform: ssm:SendCommand${resource} because no identity-based policy allows the ssm:SendCommand action`,
    $metadata: { httpStatusCode: 400 },
  });
}

// --- fixtures (shapes from the CodeDeploy API reference: DeploymentInfo, InstanceTarget) ------

export const AGENT_NOT_REACHED =
  "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy agent logs on your host and make sure the agent is running and can connect to the CodeDeploy server.";

export function failedDeployment(
  deploymentId: string,
  overrides: Partial<DeploymentInfo> = {},
): DeploymentInfo {
  const now = Date.now();
  return {
    applicationName: APP,
    deploymentGroupName: GROUP,
    deploymentConfigName: "CodeDeployDefault.OneAtATime",
    deploymentId,
    revision: REVISION,
    status: "Failed",
    errorInformation: {
      code: "HEALTH_CONSTRAINTS",
      message: "The overall deployment failed because too many individual instances failed deployment",
    },
    createTime: new Date(now - 10 * MINUTE),
    startTime: new Date(now - 10 * MINUTE),
    completeTime: new Date(now - MINUTE),
    description: "Release 42 of the web tier",
    creator: "user",
    ignoreApplicationStopFailures: true,
    fileExistsBehavior: "OVERWRITE",
    autoRollbackConfiguration: { enabled: false, events: ["DEPLOYMENT_FAILURE"] },
    updateOutdatedInstancesOnly: false,
    deploymentStyle: { deploymentType: "IN_PLACE", deploymentOption: "WITHOUT_TRAFFIC_CONTROL" },
    computePlatform: "Server",
    ...overrides,
  };
}

export function event(
  name: string,
  status: LifecycleEvent["status"],
  errorCode?: string,
  message?: string,
): LifecycleEvent {
  return {
    lifecycleEventName: name,
    status,
    ...(errorCode
      ? { diagnostics: { errorCode: errorCode as "ScriptFailed", message, scriptName: "" } }
      : {}),
  };
}

/** The morning story: the tomcat start script fails under an old agent. */
export function scriptFailedTarget(instanceId: string): InstanceTarget {
  return {
    targetId: instanceId,
    status: "Failed",
    lifecycleEvents: [
      event("ApplicationStop", "Succeeded"),
      event("DownloadBundle", "Succeeded"),
      event("BeforeInstall", "Succeeded"),
      event("Install", "Succeeded"),
      event("AfterInstall", "Succeeded"),
      event(
        "ApplicationStart",
        "Failed",
        "ScriptFailed",
        "Script at specified location: scripts/start_tomcat.sh run as user root failed with exit code 1",
      ),
      event("ValidateService", "Skipped"),
    ],
  };
}

export function agentTarget(instanceId: string): InstanceTarget {
  return {
    targetId: instanceId,
    status: "Failed",
    lifecycleEvents: [
      event("ApplicationStop", "Failed", "UnknownError", AGENT_NOT_REACHED),
      event("DownloadBundle", "Skipped"),
    ],
  };
}

// --- harness ---------------------------------------------------------------------------------

export let fakeCodeDeploy: FakeCodeDeploy;
export let fakeSsm: FakeSsm;
export let addMetric: MockInstance<typeof metrics.addMetric>;

/** The stage under test names the group of the fixtures (an empty list would be no group at all). */
export const config = (overrides: Partial<FailureConfig> = {}): FailureConfig =>
  defaultFailureConfig({
    POLL_INTERVAL_MS: 1,
    REGISTRATION_TIMEOUT_SECONDS: 0,
    TARGET_DEPLOYMENT_GROUPS: [`${APP}/${GROUP}`],
    ...overrides,
  });

export function run(
  deploymentId: string,
  overrides: Partial<FailureConfig> = {},
  lease: Lease = NO_LEASE,
  firstSeenAt?: number,
) {
  return repairFailedDeployment(
    {
      deploymentId,
      requestId: "req-1",
      deadline: Date.now() + 5 * MINUTE,
      ...(firstSeenAt !== undefined ? { firstSeenAt } : {}),
    },
    { config: config(overrides), lease },
  );
}

export function addFailure(
  deploymentId: string,
  targets: InstanceTarget[],
  overrides: Partial<DeploymentInfo> = {},
) {
  fakeCodeDeploy.add({
    info: failedDeployment(deploymentId, overrides),
    targets: targets.map((target) => ({ ...target, deploymentId })),
  });
}

/** Fresh fakes before each test of the calling file; `sqs` accepts every SendMessage. */
export function useFailureHarness(): void {
  beforeEach(() => {
    codeDeploy.reset();
    ssm.reset();
    dynamodb.reset();
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: "m-1" });
    fakeCodeDeploy = new FakeCodeDeploy();
    fakeSsm = new FakeSsm();
    clearVersionCache();
    addMetric = vi.spyOn(metrics, "addMetric");
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });
}

export function metricNames(): string[] {
  return addMetric.mock.calls.map((call) => String(call[0]));
}
