// A small account for the launch path's unit tests, answered through aws-sdk-client-mock: instances
// that register with SSM at a given time, installs of the stage's document that end after a while with
// the outcome the test scripted, lifecycle actions that close once completed. Time moves only when a
// driver waits (clock.now and clock.sleep are the world's). Both drivers run over it: the launch queue
// (step-and-return, SSM's command events delivered as messages) and run-until-done.
import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  DescribeScalingActivitiesCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type CommandInvocation,
  DescribeDocumentCommand,
  DescribeInstanceInformationCommand,
  GetDocumentCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
  SSMServiceException,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { vi } from "vitest";
import { installDocumentContent } from "../../../functions/core/agent/documents.js";
import { clearVersionCache } from "../../../functions/core/agent/settings.js";
import { clock } from "../../../functions/core/common/clock.js";
import { defaultLaunchConfig, type LaunchConfig } from "../../../functions/core/config.js";
import { COMMAND_INVOCATION_DETAIL_TYPE, installDocumentName } from "../../../functions/core/contract.js";
import { runUntilDone } from "../../../functions/core/launch/drivers.js";
import { clearHookCache } from "../../../functions/core/launch/lifecycle.js";
import { type LaunchReport, reconcileQueueBatch } from "../../../functions/core/launch/queue.js";
import { memoryStore, type RecordStore } from "../../../functions/core/launch/records.js";
import { stepOnce } from "../../../functions/core/launch/step.js";
import type { LaunchOutcome, StepContext } from "../../../functions/core/launch/types.js";
import {
  alreadyCurrent,
  deploymentInProgress,
  installedAndVerified,
  installFailed,
  invocation,
  launchHook,
  noActiveLifecycleAction,
  publishedPackage,
  restartNeeded,
  running,
} from "./aws-answers.js";
import { launchEvent, sqsRecord } from "./launch-events.js";

export const GROUP = "web-asg";
export const HOOK = "agentfix-launch";
export const INSTALL = installDocumentName("test");
/** The launch queue's event source batch size (launch.batchSize, stacks/config.ts). */
const QUEUE_BATCH_SIZE = 50;
export const ssm = mockClient(SSMClient);
export const autoScaling = mockClient(AutoScalingClient);
export const sqs = mockClient(SQSClient);

/** What one install of the document does on the instance. */
export type Outcome = "ok" | "fail" | "current" | "deploying";

interface WorldInstance {
  id: string;
  registersAt: number;
  lifecycleState: string;
  actionOpen: boolean;
  /** The agent that runs before any install (baked into the AMI), if any. */
  runningAgent?: string;
  outcomes: Outcome[];
  completions: string[];
}

interface Sent {
  commandId: string;
  instanceIds: string[];
  at: number;
  allowRestart: boolean;
  invocations: Map<string, { endsAt: number; answer: CommandInvocation }>;
}

export const ids = (count: number, offset = 0) =>
  Array.from({ length: count }, (_, index) => `i-${(offset + index).toString(16).padStart(17, "0")}`);

export class LaunchWorld {
  now = Date.parse("2026-12-01T08:00:00Z");
  readonly instances = new Map<string, WorldInstance>();
  readonly commands: Sent[] = [];
  installMs = 30_000;
  /** Install run times of particular instances, instead of installMs. */
  readonly installMsOf = new Map<string, number>();
  private counter = 0;

  constructor() {
    const unscripted = (input: object) => {
      throw new Error(`no AWS answer scripted for ${JSON.stringify(input)}`);
    };
    ssm.reset().onAnyCommand().callsFake(unscripted);
    autoScaling.reset().onAnyCommand().callsFake(unscripted);
    sqs.reset().onAnyCommand().callsFake(unscripted);
    vi.spyOn(clock, "now").mockImplementation(() => this.now);
    vi.spyOn(clock, "sleep").mockImplementation(async (ms: number) => {
      this.now += Math.max(ms, 1);
    });
    clearHookCache();
    clearVersionCache();
    ssm.on(DescribeDocumentCommand).resolves(publishedPackage("AWSCodeDeployAgent", "1.8.1"));
    // The stage's document as the stack created it (version 3): installs name that version.
    ssm.on(GetDocumentCommand).resolves({
      Name: INSTALL,
      DocumentVersion: "3",
      Content: JSON.stringify(installDocumentContent("test")),
    });
    ssm.on(DescribeInstanceInformationCommand).callsFake((input) => ({
      InstanceInformationList: (input.Filters?.[0]?.Values ?? [])
        .filter((id: string) => (this.instances.get(id)?.registersAt ?? Number.POSITIVE_INFINITY) <= this.now)
        .map((id: string) => ({ InstanceId: id, PingStatus: "Online", PlatformType: "Linux" })),
    }));
    ssm.on(SendCommandCommand).callsFake((input: SendCommandCommandInput) => this.send(input));
    ssm.on(ListCommandInvocationsCommand).callsFake((input) => {
      const found: CommandInvocation[] = [];
      for (const command of this.commands) {
        if (input.CommandId && command.commandId !== input.CommandId) continue;
        for (const [instanceId, { endsAt, answer }] of command.invocations) {
          if (input.InstanceId && instanceId !== input.InstanceId) continue;
          // An ended invocation's steps report when they finished, as SSM's do.
          const finished = (answer.CommandPlugins ?? []).map((step) => ({
            ...step,
            ResponseFinishDateTime: new Date(endsAt),
          }));
          found.push(
            this.now >= endsAt
              ? { ...answer, CommandPlugins: finished }
              : invocation(command.commandId, instanceId, "InProgress"),
          );
        }
      }
      return {
        CommandInvocations: found.map((item) => ({
          ...item,
          RequestedDateTime: new Date(this.sentAt(item)),
        })),
      };
    });
    autoScaling.on(DescribeLifecycleHooksCommand).resolves(launchHook(GROUP, HOOK));
    autoScaling.on(DescribeAutoScalingInstancesCommand).callsFake((input) => ({
      AutoScalingInstances: (input.InstanceIds ?? [])
        .filter((id: string) => this.instances.has(id))
        .map((id: string) => ({
          InstanceId: id,
          AutoScalingGroupName: GROUP,
          LifecycleState: this.instances.get(id)?.lifecycleState,
        })),
    }));
    autoScaling.on(DescribeScalingActivitiesCommand).callsFake(() => ({
      Activities: [...this.instances.values()].map((instance) => ({
        ActivityId: `a-${instance.id}`,
        AutoScalingGroupName: GROUP,
        Description: `Launching a new EC2 instance: ${instance.id}`,
        StartTime: new Date(this.startOf(instance.id)),
        Cause: "scale-out",
        StatusCode: "InProgress",
      })),
    }));
    autoScaling.on(CompleteLifecycleActionCommand).callsFake((input) => this.complete(input));
    autoScaling.on(RecordLifecycleActionHeartbeatCommand).callsFake((input) => {
      const instance = this.instanceOf(input);
      if (!instance?.actionOpen) throw noActiveLifecycleAction(input.LifecycleActionToken ?? "");
      return {};
    });
    sqs.on(ChangeMessageVisibilityCommand).resolves({});
    sqs.on(SendMessageBatchCommand).callsFake((input) => ({
      Successful: input.Entries.map((entry: { Id: string }) => ({
        Id: entry.Id,
        MessageId: `m-${entry.Id}`,
      })),
      Failed: [],
    }));
  }

  private readonly starts = new Map<string, number>();

  /** Instances launched now, registering with SSM after `registerAfterMs`. */
  launch(
    instanceIds: string[],
    options: { registerAfterMs?: number; outcomes?: Outcome[]; runningAgent?: string } = {},
  ) {
    for (const id of instanceIds) {
      this.starts.set(id, this.now);
      this.instances.set(id, {
        id,
        registersAt: this.now + (options.registerAfterMs ?? 10_000),
        lifecycleState: "Pending:Wait",
        actionOpen: true,
        outcomes: [...(options.outcomes ?? [])],
        completions: [],
        ...(options.runningAgent ? { runningAgent: options.runningAgent } : {}),
      });
    }
    return instanceIds.map((id) => launchEvent(id));
  }

  startOf(instanceId: string): number {
    return this.starts.get(instanceId) ?? this.now;
  }

  /** The installs the world ran, per instance. */
  installsOn(instanceId: string): number {
    return this.commands.filter((command) => command.instanceIds.includes(instanceId)).length;
  }

  completionsOf(instanceId: string): string[] {
    return this.instances.get(instanceId)?.completions ?? [];
  }

  /** SSM's command-invocation events for invocations that ended by now. */
  endedSince(since: number): { at: number; event: object }[] {
    const events: { at: number; event: object }[] = [];
    for (const command of this.commands) {
      for (const [instanceId, { endsAt, answer }] of command.invocations) {
        if (endsAt <= since || endsAt > this.now) continue;
        events.push({
          at: endsAt,
          event: commandEvent(command.commandId, instanceId, answer.Status ?? "Success"),
        });
      }
    }
    return events;
  }

  private send(input: SendCommandCommandInput) {
    if (input.DocumentName !== INSTALL) throw new Error(`unexpected document ${input.DocumentName}`);
    const instanceIds = input.InstanceIds ?? [];
    const unregistered = instanceIds.filter(
      (id) => (this.instances.get(id)?.registersAt ?? Infinity) > this.now,
    );
    if (unregistered.length > 0) {
      throw new SSMServiceException({
        name: "InvalidInstanceId",
        $fault: "client",
        message: `Instances [[${unregistered.join(", ")}]] not in a valid state for account 123456789012`,
        $metadata: { httpStatusCode: 400 },
      });
    }
    this.counter += 1;
    const commandId = `00000000-0000-0000-0000-${String(this.counter).padStart(12, "0")}`;
    const allowRestart = input.Parameters?.allowRestart?.[0] === "yes";
    const command: Sent = { commandId, instanceIds, at: this.now, allowRestart, invocations: new Map() };
    for (const id of instanceIds) {
      const instance = this.instances.get(id);
      if (!instance) throw new Error(`unknown instance ${id}`);
      command.invocations.set(id, {
        endsAt: this.now + (this.installMsOf.get(id) ?? this.installMs),
        answer: this.run(commandId, instance, allowRestart),
      });
    }
    this.commands.push(command);
    return { Command: { CommandId: commandId } };
  }

  private run(commandId: string, instance: WorldInstance, allowRestart: boolean): CommandInvocation {
    if (instance.runningAgent && !allowRestart)
      return restartNeeded(commandId, instance.id, running(instance.runningAgent));
    const outcome = instance.outcomes.shift() ?? "ok";
    const before = instance.runningAgent ? { before: running(instance.runningAgent) } : {};
    if (outcome === "ok") delete instance.runningAgent;
    switch (outcome) {
      case "ok":
        return installedAndVerified(commandId, instance.id, "1.8.1", before);
      case "current":
        return alreadyCurrent(commandId, instance.id);
      case "deploying":
        return deploymentInProgress(commandId, instance.id, "d-LAUNCH0001", { before: running("1.7.1") });
      case "fail":
        return installFailed(commandId, instance.id, before);
    }
  }

  private sentAt(item: CommandInvocation): number {
    return this.commands.find((command) => command.commandId === item.CommandId)?.at ?? this.now;
  }

  private instanceOf(input: { InstanceId?: string; LifecycleActionToken?: string }) {
    const id = input.InstanceId ?? input.LifecycleActionToken?.replace(/^token-/, "");
    return id ? this.instances.get(id) : undefined;
  }

  private complete(input: {
    InstanceId?: string;
    LifecycleActionToken?: string;
    LifecycleActionResult?: string;
  }) {
    const instance = this.instanceOf(input);
    if (!instance?.actionOpen) throw noActiveLifecycleAction(input.LifecycleActionToken ?? "");
    instance.actionOpen = false;
    instance.completions.push(input.LifecycleActionResult ?? "");
    instance.lifecycleState = input.LifecycleActionResult === "CONTINUE" ? "InService" : "Terminating";
    return {};
  }
}

export function commandEvent(commandId: string, instanceId: string, status: string) {
  return {
    version: "0",
    id: `e-${commandId}-${instanceId}`,
    "detail-type": COMMAND_INVOCATION_DETAIL_TYPE,
    source: "aws.ssm",
    account: "123456789012",
    time: new Date(clock.now()).toISOString(),
    region: "us-east-1",
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: {
      "command-id": commandId,
      "document-name": INSTALL,
      "instance-id": instanceId,
      "requested-date-time": new Date(clock.now()).toISOString(),
      status,
    },
  };
}

export const launchConfig = (overrides: Partial<LaunchConfig> = {}): LaunchConfig =>
  defaultLaunchConfig({
    LIFECYCLE_HOOK_NAME: HOOK,
    TARGET_GROUPS: [GROUP],
    LAUNCH_QUEUE_URL: "https://sqs.test/launch",
    ...overrides,
  });

export function stepContext(world: LaunchWorld, store: RecordStore, seconds = 40): StepContext {
  return {
    store,
    now: () => world.now,
    deadline: world.now + (seconds - 10) * 1000,
    heldUntil: world.now + seconds * 1000,
    correlationId: `req-${world.now}`,
  };
}

export interface QueueRun {
  outcomes: Map<string, LaunchOutcome>;
  receives: number;
  invocations: number;
  reports: LaunchReport[];
}

/**
 * The launch queue, as the stack wires it: each message is received when visible, a batch of up to
 * ten goes to one step, an unfinished one comes back when its visibility says, and SSM's command
 * events join the queue as their invocations end (`dropSignals` loses them, `repeat` delivers twice).
 */
export async function driveQueue(
  world: LaunchWorld,
  bodies: object[],
  options: {
    config?: LaunchConfig;
    store?: RecordStore;
    dropSignals?: boolean;
    repeat?: boolean;
    untilMs?: number;
  } = {},
): Promise<QueueRun> {
  const config = options.config ?? launchConfig();
  const store = options.store ?? memoryStore();
  let counter = 0;
  const queue: { id: string; body: object; visibleAt: number; receives: number }[] = [];
  const enqueue = (body: object, at: number) => {
    for (let copy = 0; copy < (options.repeat ? 2 : 1); copy += 1) {
      counter += 1;
      queue.push({ id: `m${counter}`, body, visibleAt: at, receives: 0 });
    }
  };
  for (const body of bodies) enqueue(body, world.now);
  const run: QueueRun = { outcomes: new Map(), receives: 0, invocations: 0, reports: [] };
  const end = world.now + (options.untilMs ?? 3 * 3600_000);
  let signalledUpTo = world.now;
  while (queue.length > 0 && world.now < end) {
    world.now = Math.max(world.now, Math.min(...queue.map((message) => message.visibleAt)));
    if (!options.dropSignals)
      for (const { event } of world.endedSince(signalledUpTo)) enqueue(event, world.now);
    signalledUpTo = world.now;
    const batch = queue.filter((message) => message.visibleAt <= world.now).slice(0, QUEUE_BATCH_SIZE);
    if (batch.length === 0) continue;
    sqs.resetHistory();
    const report = await reconcileQueueBatch(
      { Records: batch.map((message) => sqsRecord(message.id, message.body)) },
      (work) => stepOnce(work, config, stepContext(world, store)),
      config,
    );
    run.invocations += 1;
    run.receives += batch.length;
    run.reports.push(report);
    for (const outcome of report.instances) run.outcomes.set(outcome.instanceId, outcome);
    const kept = new Set((report.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    const visibility = new Map(
      sqs
        .commandCalls(ChangeMessageVisibilityCommand)
        .map((call) => [
          call.args[0].input.ReceiptHandle?.replace(/^receipt-/, ""),
          call.args[0].input.VisibilityTimeout,
        ]),
    );
    for (const message of batch) {
      message.receives += 1;
      const index = queue.indexOf(message);
      if (!kept.has(message.id)) queue.splice(index, 1);
      else message.visibleAt = world.now + (visibility.get(message.id) ?? 50) * 1000;
    }
    world.now += 1_000;
  }
  return run;
}

/** Run-until-done over the same launches, invocation after invocation until none is pending. */
export async function driveUntilDone(
  world: LaunchWorld,
  events: object[],
  options: { config?: LaunchConfig; store?: RecordStore } = {},
): Promise<Map<string, LaunchOutcome>> {
  const config = options.config ?? launchConfig();
  const store = options.store ?? memoryStore();
  const { parseLaunchInput } = await import("../../../functions/schemas/launch-input.js");
  const requests = events.flatMap((event) => {
    const parsed = parseLaunchInput(event);
    return parsed === "test-notification" ? [] : parsed;
  });
  const outcomes = new Map<string, LaunchOutcome>();
  for (let round = 0; round < 50; round += 1) {
    const pending = requests.filter(
      (request) => (outcomes.get(request.instanceId)?.outcome ?? "PENDING") === "PENDING",
    );
    if (pending.length === 0) break;
    const report = await runUntilDone({ requests: pending, signals: [] }, config, {
      ...stepContext(world, store, 300),
      continuing: round > 0,
    });
    for (const outcome of report) outcomes.set(outcome.instanceId, outcome);
  }
  return outcomes;
}
