import type { WorldServices } from "../services.js";
import { type Command, detailsOf, type Invocation, type InvocationStatus, isTerminal } from "./records.js";

/**
 * Every command and invocation SSM holds, by command and by instance, and how an invocation moves:
 * in progress, then to an end that cancels its timers.
 */
export class Invocations {
  readonly commands = new Map<string, Command>();
  readonly all: Invocation[] = [];
  private readonly byInstance = new Map<string, Invocation[]>();

  constructor(private readonly world: WorldServices) {}

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
