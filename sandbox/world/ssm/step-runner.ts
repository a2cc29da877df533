import { VERIFY_MARKER } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { Random } from "../random.js";
import {
  type CommandDocument,
  type DocumentStep,
  inputString,
  scriptLines,
  substitute,
} from "./command-documents.js";
import type { Distributor } from "./distributor.js";
import type { Invocations } from "./invocations.js";
import {
  detailsOf,
  type Invocation,
  type InvocationStatus,
  type PluginKind,
  type StepRecord,
} from "./records.js";
import type { Scripts } from "./scripts.js";

// How SSM Agent runs the steps of a schemaVersion 2.2 document, and the words it reports them with
// (amazon-ssm-agent agent/framework/runpluginutil/runpluginutil.go, RunPlugins and
// getStepExecutionOperation): steps in order; a step whose plugin this platform lacks, or whose
// precondition does not hold, is skipped; a failed step does not stop the next ones unless its
// onFailure says so; onSuccess: exit ends the document after a step that succeeded. onFailure,
// onSuccess and finallyStep need SSM Agent 3.0.502 or later
// (https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-command-ssm-plugin-reference.html).

const ON_FAILURE_NOTE =
  "\nStep was found to have onFailure property. Further document steps will be skipped.";
/** The exit code SSM Agent gives a step that ends the document with success (contracts.ExitWithSuccess). */
const EXIT_WITH_SUCCESS = 168;

interface DocumentRun {
  invocation: Invocation;
  steps: StepRecord[];
  instance: Instance;
  document: CommandDocument;
  parameters: Record<string, string[]>;
  rng: Random;
  /** A step ended the document: the steps after it are skipped (but a last finallyStep). */
  exited: boolean;
}

type Operation = { run: true } | { run: false; skipped: boolean; message: string };

/** The step records of a new invocation of `document`, all pending. */
export function pendingSteps(document: CommandDocument, parameters: Record<string, string[]>): StepRecord[] {
  return document.steps.map((step) => {
    const kind = kindOf(step, parameters);
    return {
      name: step.name,
      action: step.action,
      kind,
      packageName: kind === "install" ? inputString(step, "name", parameters) : undefined,
      status: "Pending",
      statusDetails: "Pending",
      responseCode: -1,
      output: "",
      errorOutput: "",
    };
  });
}

/** What the invocation as a whole does: installs, verifies, or runs other scripts. */
export function invocationKind(steps: StepRecord[]): PluginKind {
  if (steps.some((step) => step.kind === "install")) return "install";
  return steps.some((step) => step.kind === "verify") ? "verify" : "script";
}

function kindOf(step: DocumentStep, parameters: Record<string, string[]>): PluginKind {
  if (step.action === "aws:configurePackage") {
    return inputString(step, "action", parameters) === "Install" ? "install" : "other";
  }
  return scriptLines(step, parameters).join("\n").split("\n")[0]?.trim() === VERIFY_MARKER
    ? "verify"
    : "script";
}

/** Runs a delivered invocation of a Command document created in the account, step by step. */
export class StepRunner {
  constructor(
    private readonly invocations: Invocations,
    private readonly distributor: Distributor,
    private readonly scripts: Scripts,
  ) {}

  run(
    invocation: Invocation,
    instance: Instance,
    document: CommandDocument,
    parameters: Record<string, string[]>,
    rng: Random,
  ): void {
    this.invocations.markInProgress(invocation);
    const steps = invocation.steps ?? [];
    this.next({ invocation, steps, instance, document, parameters, rng, exited: false }, 0);
  }

  private next(run: DocumentRun, index: number): void {
    if (run.invocation.status !== "InProgress") return;
    const step = run.document.steps[index];
    const record = run.steps[index];
    if (!step || !record) {
      this.complete(run);
      return;
    }
    const operation = this.operationOf(run, step, index);
    if (!operation.run) {
      this.endWithoutRunning(run, step, record, operation);
      this.next(run, index + 1);
      return;
    }
    const target = this.invocations.target(run.invocation, record, () => {
      this.afterPlugin(run, step, record);
      this.next(run, index + 1);
    });
    const rng = run.rng.fork(`step:${step.name}`);
    if (step.action === "aws:configurePackage") {
      if (record.kind !== "install") {
        target.begin();
        target.finish(
          "Failed",
          "Failed",
          1,
          "",
          "This sandbox emulates only the Install action of aws:configurePackage.",
        );
        return;
      }
      this.distributor.noteInstallSent(target, run.instance);
      const version = inputString(step, "version", run.parameters);
      this.distributor.install(target, run.instance, { packageName: record.packageName ?? "", version }, rng);
      return;
    }
    this.scripts.runStep(target, run.instance, rng, {
      lines: scriptLines(step, run.parameters),
      expectedVersion: run.parameters.expectedVersion?.[0] ?? "",
      allowRestart: run.parameters.allowRestart?.[0] === "yes",
    });
  }

  /** Whether the step runs, is skipped, or fails before it starts; in getStepExecutionOperation's order and words. */
  private operationOf(run: DocumentRun, step: DocumentStep, index: number): Operation {
    const last = index === run.document.steps.length - 1;
    const finallyStep = String(step.inputs.finallyStep ?? "") === "true";
    if (run.exited && !(last && finallyStep)) {
      return {
        run: false,
        skipped: true,
        message: `Plugin with name ${step.action} and id ${step.name} skipped due to prior step with an exit condition`,
      };
    }
    // aws:runShellScript is registered on Linux and macOS only; aws:runPowerShellScript everywhere.
    const handlerFound = step.action !== "aws:runShellScript" || run.instance.platform !== "Windows";
    const unsupported = `Step execution skipped due to unsupported plugin: ${step.action}. Step name: ${step.name}`;
    if (!step.precondition || Object.keys(step.precondition).length === 0) {
      return handlerFound ? { run: true } : { run: false, skipped: true, message: unsupported };
    }
    const { allowed, unrecognized } = evaluatePreconditions(step.precondition, run.instance, run.parameters);
    if (!handlerFound) return { run: false, skipped: true, message: unsupported };
    if (!allowed) {
      return {
        run: false,
        skipped: true,
        message: `Step execution skipped due to unsatisfied preconditions: '${unrecognized.join(", ")}'. Step name: ${step.name}`,
      };
    }
    if (unrecognized.length > 0) {
      return {
        run: false,
        skipped: false,
        message: `Unrecognized precondition(s): '${unrecognized.join(", ")}', please update agent to latest version. Step name: ${step.name}`,
      };
    }
    return { run: true };
  }

  private endWithoutRunning(
    run: DocumentRun,
    step: DocumentStep,
    record: StepRecord,
    operation: { skipped: boolean; message: string },
  ): void {
    // A skipped step reports its reason as its output (not on stdout), and counts as a success.
    Object.assign(record, {
      status: operation.skipped ? "Skipped" : "Failed",
      statusDetails: operation.skipped ? "Skipped" : "Failed",
      responseCode: operation.skipped ? 0 : 1,
      pluginOutput: operation.message,
      startedAt: this.invocations.now(),
      endedAt: this.invocations.now(),
    });
    if (!operation.skipped && inputOf(step, "onFailure") === "exit") run.exited = true;
  }

  /** onFailure and onSuccess, applied as SSM Agent does once the plugin ended. */
  private afterPlugin(run: DocumentRun, step: DocumentStep, record: StepRecord): void {
    const onFailure = inputOf(step, "onFailure");
    if (record.status === "Failed" && (onFailure === "exit" || onFailure === "successAndExit")) {
      record.output += ON_FAILURE_NOTE;
      record.errorOutput += ON_FAILURE_NOTE;
      if (onFailure === "successAndExit") {
        record.status = "Success";
        record.statusDetails = "Success";
        record.responseCode = EXIT_WITH_SUCCESS;
      }
      run.exited = true;
      return;
    }
    if (record.status === "Success" && inputOf(step, "onSuccess") === "exit") run.exited = true;
  }

  /** The document's status from its steps' (contracts/aggregator.go): a skipped step is a success. */
  private complete(run: DocumentRun): void {
    const statuses = run.steps.map((step) => step.status);
    const status: InvocationStatus = statuses.includes("Failed")
      ? "Failed"
      : statuses.includes("TimedOut")
        ? "TimedOut"
        : statuses.includes("Cancelled")
          ? "Cancelled"
          : "Success";
    const failed = run.steps.find((step) => step.status === "Failed");
    this.invocations.finish(
      run.invocation,
      status,
      detailsOf(status),
      failed ? failed.responseCode : 0,
      "",
      "",
    );
  }
}

function inputOf(step: DocumentStep, key: string): string {
  const value = step.inputs[key];
  return value === undefined || value === null ? "" : String(value);
}

/**
 * SSM Agent's preconditions: only StringEquals, with exactly two arguments; against `platformType`
 * (either order, case-insensitive) or between parameter values. An unsatisfied one skips the step;
 * one it does not recognise fails it.
 */
function evaluatePreconditions(
  preconditions: Record<string, unknown>,
  instance: Instance,
  parameters: Record<string, string[]>,
): { allowed: boolean; unrecognized: string[] } {
  let allowed = true;
  const unrecognized: string[] = [];
  for (const [operator, value] of Object.entries(preconditions)) {
    if (operator !== "StringEquals") {
      unrecognized.push(`unrecognized operator: "${operator}"`);
      continue;
    }
    if (!Array.isArray(value) || value.length !== 2) {
      unrecognized.push(`"${operator}": operator accepts exactly 2 arguments`);
      continue;
    }
    const [first, second] = value.map(String) as [string, string];
    if (first === second) {
      unrecognized.push(`"${operator}": operator's arguments can't be identical`);
    } else if (first === "platformType" || second === "platformType") {
      const wanted = first === "platformType" ? second : first;
      if (instance.platform.toLowerCase() !== wanted.toLowerCase()) {
        allowed = false;
        unrecognized.push(`"${operator}": [${first}, ${second}]`);
      }
    } else {
      const resolve = (text: string) => substitute(text, parameters);
      if (resolve(first) === first && resolve(second) === second) {
        unrecognized.push(
          `"${operator}": at least one of operator's arguments must contain a valid document parameter`,
        );
      } else if (resolve(first) !== resolve(second)) {
        allowed = false;
        unrecognized.push(`"${operator}": [${first}, ${second}]`);
      }
    }
  }
  return { allowed, unrecognized };
}
