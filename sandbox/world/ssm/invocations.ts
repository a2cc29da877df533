import { commandInvocationEvent } from "../../events/shapes.js";
import type { WorldServices } from "../services.js";
import {
  type Command,
  detailsOf,
  type Invocation,
  type InvocationStatus,
  isTerminal,
  type PluginResult,
  type StepRecord,
} from "./records.js";

/**
 * Every command and invocation SSM holds, by command and by instance, and how an invocation moves:
 * in progress, then to an end that cancels its timers.
 */
export class Invocations {
  readonly commands = new Map<string, Command>();
  readonly all: Invocation[] = [];
  private readonly byInstance = new Map<string, Invocation[]>();

  constructor(private readonly world: WorldServices) {}

  now(): number {
    return this.world.now();
  }

  /** Every invocation sent to one instance, oldest first. */
  of(instanceId: string): Invocation[] {
    return this.byInstance.get(instanceId) ?? [];
  }

  add(invocation: Invocation): void {
    this.all.push(invocation);
    const ofInstance = this.byInstance.get(invocation.instanceId) ?? [];
    ofInstance.push(invocation);
    this.byInstance.set(invocation.instanceId, ofInstance);
  }

  markInProgress(invocation: Invocation): void {
    invocation.status = "InProgress";
    invocation.statusDetails = "In Progress";
    invocation.startedAt = this.world.now();
    this.publishStatus(invocation);
  }

  /**
   * Run Command's status-change event for one invocation of a SendCommand (an association's runs
   * report through State Manager's events instead). Best effort: the bus may drop or repeat it.
   */
  private publishStatus(invocation: Invocation): void {
    if (invocation.source !== "api") return;
    this.world.publisher.publish(
      commandInvocationEvent({
        id: this.world.rng
          .fork(`ssm-event:${invocation.commandId}:${invocation.instanceId}:${invocation.status}`)
          .uuid(),
        at: this.world.now(),
        region: this.world.region,
        commandId: invocation.commandId,
        documentName: invocation.documentName,
        instanceId: invocation.instanceId,
        requestedAt: invocation.requestedAt,
        status: invocation.status,
      }),
    );
  }

  finish(
    invocation: Invocation,
    status: InvocationStatus,
    details: string,
    responseCode: number,
    output: string,
    errorOutput: string,
  ): void {
    for (const timer of invocation.timers) timer.cancel();
    invocation.timers = [];
    invocation.status = status;
    invocation.statusDetails = details;
    invocation.responseCode = responseCode;
    invocation.output = output;
    invocation.errorOutput = errorOutput;
    invocation.startedAt ??= this.world.now();
    invocation.endedAt = this.world.now();
    // Cancelled or cut short by the instance going away: the steps not done end with the invocation.
    for (const step of invocation.steps ?? []) {
      if (isStepDone(step)) continue;
      step.status = status;
      step.statusDetails = details;
      step.endedAt = this.world.now();
    }
    this.publishStatus(invocation);
  }

  /** Where a plugin running for `invocation` (or for one of its steps) reports. */
  target(invocation: Invocation, step?: StepRecord, onEnd?: () => void): PluginTarget {
    return new PluginTarget(this, this.world, invocation, step, onEnd);
  }

  /** The command's overall status, derived from its invocations as SSM does. */
  commandStatus(command: Command): {
    status: string;
    details: string;
    completed: number;
    errors: number;
    timedOut: number;
  } {
    const statuses = command.invocations.map((invocation) => invocation.status);
    const completed = statuses.filter((status) => isTerminal(status)).length;
    const errors = statuses.filter((status) => status === "Failed" || status === "TimedOut").length;
    const timedOut = command.invocations.filter((invocation) =>
      invocation.statusDetails.includes("Timed Out"),
    ).length;
    let status: string;
    if (statuses.every((value) => value === "Pending")) status = "Pending";
    else if (completed < statuses.length) status = "InProgress";
    else if (statuses.every((value) => value === "Success")) status = "Success";
    else if (statuses.every((value) => value === "Cancelled")) status = "Cancelled";
    else if (statuses.includes("Failed")) status = "Failed";
    else if (statuses.includes("TimedOut")) status = "TimedOut";
    else status = "Success";
    return { status, details: detailsOf(status as InvocationStatus), completed, errors, timedOut };
  }
}

export function isStepDone(step: PluginResult): boolean {
  return step.status === "Skipped" || isTerminal(step.status as InvocationStatus);
}

/**
 * What a plugin (a Distributor install, a script) runs for and reports to: the invocation of a
 * one-step AWS document, or one step of a document's invocation. Its timers are the invocation's, so
 * cancelling the invocation or the instance going away stops the plugin too.
 */
export class PluginTarget {
  constructor(
    private readonly store: Invocations,
    private readonly world: WorldServices,
    readonly invocation: Invocation,
    readonly step?: StepRecord,
    private readonly onEnd?: () => void,
  ) {}

  /** The result this plugin writes: its step's, or the whole invocation's. */
  get result(): PluginResult {
    return this.step ?? this.invocation;
  }

  get running(): boolean {
    return this.result.status === "InProgress" && this.invocation.status === "InProgress";
  }

  begin(): void {
    if (!this.step) {
      this.store.markInProgress(this.invocation);
      return;
    }
    this.step.status = "InProgress";
    this.step.statusDetails = "In Progress";
    this.step.startedAt = this.world.now();
  }

  /** Runs `task` `awsMs` AWS milliseconds from now, unless the invocation ends first. */
  after(awsMs: number, task: () => void): void {
    this.invocation.timers.push(this.world.scheduler.after(awsMs, task));
  }

  finish(
    status: InvocationStatus,
    details: string,
    responseCode: number,
    output: string,
    errorOutput: string,
  ): void {
    if (!this.step) {
      this.store.finish(this.invocation, status, details, responseCode, output, errorOutput);
      return;
    }
    Object.assign(this.step, {
      status,
      statusDetails: details,
      // SSM Agent reports a failed plugin with exit code 0 as 1 (contracts/aggregator.go).
      responseCode: status === "Failed" && responseCode === 0 ? 1 : responseCode,
      output,
      errorOutput,
      pluginOutput: truncatePluginOutput(output, errorOutput),
      endedAt: this.world.now(),
    });
    this.step.startedAt ??= this.world.now();
    this.onEnd?.();
  }
}

const MAXIMUM_PLUGIN_OUTPUT = 2500;
const ERROR_TITLE = "\n----------ERROR-------\n";
const OUTPUT_TRUNCATED = "\n---Output truncated---";
const ERROR_TRUNCATED = "\n---Error truncated----";

/**
 * CommandPlugins[].Output as SSM Agent builds it: stdout, then stderr after a title, 2,500 characters
 * at most, each part cut with a marker when both do not fit
 * (amazon-ssm-agent agent/framework/processor/executer/iohandler/iohandler.go, TruncateOutput).
 */
export function truncatePluginOutput(stdout: string, stderr: string): string {
  const title = stderr.length > 0 ? ERROR_TITLE : "";
  const available = MAXIMUM_PLUGIN_OUTPUT - title.length;
  if (stdout.length + stderr.length < available) return `${stdout}${title}${stderr}`;
  if (stdout.length > available / 2 && stderr.length > available / 2) {
    const size = available - ERROR_TRUNCATED.length - OUTPUT_TRUNCATED.length;
    const half = Math.floor(size / 2);
    return `${stdout.slice(0, half)}${OUTPUT_TRUNCATED}${title}${stderr.slice(0, half)}${ERROR_TRUNCATED}`;
  }
  if (stdout.length <= available / 2) {
    const size = available - ERROR_TRUNCATED.length;
    return `${stdout}${title}${stderr.slice(0, size - stdout.length)}${ERROR_TRUNCATED}`;
  }
  const size = available - OUTPUT_TRUNCATED.length;
  return `${stdout.slice(0, size - stderr.length)}${OUTPUT_TRUNCATED}${title}${stderr}`;
}
