import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type CommandInvocation,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { clock } from "../../../functions/core/common/clock.js";

/**
 * A small, stateful stand-in for SSM and Auto Scaling behind aws-sdk-client-mock: instances register
 * after a number of DescribeInstanceInformation polls, installs finish after a number of polls with a
 * scripted outcome, verification answers from the instance's agent state. No network.
 */
export interface FakeInstance {
  id: string;
  platform?: "Linux" | "Windows";
  lifecycleState?: string;
  group?: string;
  /** DescribeInstanceInformation polls before it shows Online (0 = already online). */
  registersAfterPolls?: number;
  /** Outcome of each install, in order; the last repeats. `success-dead`: Success but the agent does not run. */
  installs?: ("success" | "failed" | "success-dead")[];
  /** ListCommandInvocations polls an install stays InProgress. */
  installPolls?: number;
  agentVersion?: string;
  agentRunning?: boolean;
  /** The version an install puts in place. */
  installsVersion?: string;
}

interface Invocation {
  commandId: string;
  instanceId: string;
  document: string;
  comment: string;
  requestedAt: number;
  pollsLeft: number;
  result: "Success" | "Failed";
  output: string;
}

export class FakeAws {
  readonly ssm = mockClient(SSMClient);
  readonly autoScaling = mockClient(AutoScalingClient);
  readonly dynamodb = mockClient(DynamoDBClient);
  readonly sqs = mockClient(SQSClient);
  readonly instances = new Map<string, Required<FakeInstance> & { polls: number; installCount: number }>();
  readonly invocations: Invocation[] = [];
  readonly completions: { instanceId?: string; token?: string; result?: string }[] = [];
  readonly heartbeats: { instanceId?: string; token?: string }[] = [];
  hooks = [
    {
      LifecycleHookName: "agentfix-launch",
      LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
      HeartbeatTimeout: 900,
      DefaultResult: "ABANDON",
    },
  ];
  private commandCount = 0;

  constructor(instances: FakeInstance[]) {
    for (const instance of instances) this.add(instance);
    this.wire();
  }

  add(instance: FakeInstance): void {
    this.instances.set(instance.id, {
      platform: "Linux",
      lifecycleState: "Pending:Wait",
      group: "web-asg",
      registersAfterPolls: 0,
      installs: ["success"],
      installPolls: 1,
      agentVersion: "",
      agentRunning: false,
      installsVersion: "1.8.1",
      ...instance,
      polls: 0,
      installCount: 0,
    });
  }

  restore(): void {
    this.ssm.restore();
    this.autoScaling.restore();
    this.dynamodb.restore();
    this.sqs.restore();
  }

  sendCommands(document?: string) {
    return this.ssm
      .commandCalls(SendCommandCommand)
      .filter((call) => !document || call.args[0].input.DocumentName === document);
  }

  private wire(): void {
    this.ssm.on(DescribeInstanceInformationCommand).callsFake((input) => {
      const ids: string[] = input.Filters?.[0]?.Values ?? [];
      const list = [];
      for (const id of ids) {
        const instance = this.instances.get(id);
        if (!instance) continue;
        instance.polls += 1;
        if (instance.polls > instance.registersAfterPolls && instance.lifecycleState !== "Terminated") {
          list.push({ InstanceId: id, PingStatus: "Online", PlatformType: instance.platform });
        }
      }
      return { InstanceInformationList: list };
    });

    this.ssm.on(SendCommandCommand).callsFake((input) => {
      const commandId = `cmd-${++this.commandCount}`;
      for (const id of input.InstanceIds ?? []) {
        const instance = this.instances.get(id);
        if (!instance) continue;
        const install = input.DocumentName === "AWS-ConfigureAWSPackage";
        let result: "Success" | "Failed" = "Success";
        let output = "";
        if (install) {
          const outcome = instance.installs[Math.min(instance.installCount, instance.installs.length - 1)];
          instance.installCount += 1;
          result = outcome === "failed" ? "Failed" : "Success";
          if (outcome !== "failed") {
            instance.agentVersion = instance.installsVersion;
            instance.agentRunning = outcome === "success";
          }
          output =
            outcome === "failed"
              ? "Failed to install package; install status Failed"
              : "Successfully installed";
        }
        this.invocations.push({
          commandId,
          instanceId: id,
          document: input.DocumentName ?? "",
          comment: input.Comment ?? "",
          requestedAt: clock.now(),
          pollsLeft: install ? instance.installPolls : 0,
          result,
          output,
        });
      }
      return {
        Command: { CommandId: commandId, DocumentName: input.DocumentName, InstanceIds: input.InstanceIds },
      };
    });

    this.ssm.on(ListCommandInvocationsCommand).callsFake((input) => {
      let rows = this.invocations;
      if (input.CommandId) rows = rows.filter((row) => row.commandId === input.CommandId);
      for (const filter of input.Filters ?? []) {
        if (filter.key === "DocumentName") rows = rows.filter((row) => row.document === filter.value);
        if (filter.key === "InvokedAfter")
          rows = rows.filter((row) => row.requestedAt >= Date.parse(filter.value ?? ""));
      }
      const list: CommandInvocation[] = rows.map((row) => this.render(row, Boolean(input.CommandId)));
      return { CommandInvocations: list };
    });

    this.autoScaling.on(DescribeAutoScalingInstancesCommand).callsFake((input) => ({
      AutoScalingInstances: (input.InstanceIds ?? [])
        .map((id: string) => this.instances.get(id))
        .filter((instance: unknown) => instance !== undefined)
        .filter((instance: { lifecycleState: string }) => instance.lifecycleState !== "Terminated")
        .map((instance: { id: string; lifecycleState: string; group: string }) => ({
          InstanceId: instance.id,
          LifecycleState: instance.lifecycleState,
          AutoScalingGroupName: instance.group,
        })),
    }));
    this.autoScaling.on(DescribeLifecycleHooksCommand).callsFake(() => ({ LifecycleHooks: this.hooks }));
    this.autoScaling.on(DescribeScalingActivitiesCommand).resolves({ Activities: [] });
    this.autoScaling.on(CompleteLifecycleActionCommand).callsFake((input) => {
      const instance =
        [...this.instances.values()].find((item) => item.id === input.InstanceId) ??
        [...this.instances.values()].find((item) => input.LifecycleActionToken === `token-${item.id}`);
      if (!instance?.lifecycleState.endsWith("Pending:Wait")) {
        throw Object.assign(
          new Error(
            `No active Lifecycle Action found with instance ID ${input.InstanceId ?? input.LifecycleActionToken}`,
          ),
          {
            name: "ValidationError",
          },
        );
      }
      instance.lifecycleState = input.LifecycleActionResult === "CONTINUE" ? "InService" : "Terminating";
      this.completions.push({
        instanceId: instance.id,
        token: input.LifecycleActionToken,
        result: input.LifecycleActionResult,
      });
      return {};
    });
    this.autoScaling.on(RecordLifecycleActionHeartbeatCommand).callsFake((input) => {
      this.heartbeats.push({ instanceId: input.InstanceId, token: input.LifecycleActionToken });
      return {};
    });
    this.dynamodb.on(PutItemCommand).resolves({});
    this.sqs.on(ChangeMessageVisibilityCommand).resolves({});
  }

  /** Installs advance one step per look by command id, as if time passed between polls. */
  private render(row: Invocation, advance: boolean): CommandInvocation {
    const instance = this.instances.get(row.instanceId);
    if (advance && row.pollsLeft > 0) row.pollsLeft -= 1;
    const done = row.pollsLeft <= 0;
    let status: string = done ? row.result : "InProgress";
    let output = row.output;
    if (row.document !== "AWS-ConfigureAWSPackage" && instance) {
      const state = instance.agentRunning ? "running" : instance.agentVersion ? "stopped" : "missing";
      output = `AGENTFIX_AGENT_STATUS=${state} AGENTFIX_AGENT_VERSION=${instance.agentVersion}`;
      status = instance.agentRunning ? "Success" : "Failed";
    }
    if (instance?.lifecycleState === "Terminated" && !done) status = "Failed";
    return {
      CommandId: row.commandId,
      InstanceId: row.instanceId,
      DocumentName: row.document,
      Comment: row.comment,
      RequestedDateTime: new Date(row.requestedAt),
      Status: status as CommandInvocation["Status"],
      StatusDetails: instance?.lifecycleState === "Terminated" && !done ? "Terminated" : status,
      CommandPlugins: [{ Name: "aws:runShellScript", Output: output }],
    };
  }
}
