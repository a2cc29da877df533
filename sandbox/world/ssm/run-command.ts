import { GROUP_TAG } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import { ACCOUNT_ID, AwsServiceError, constraintViolation } from "../service-error.js";
import type { WorldServices } from "../services.js";
import { resolveParameters } from "./command-documents.js";
import type { Distributor } from "./distributor.js";
import type { DocumentStore } from "./document-store.js";
import { classifyCommand, DOCUMENTS, pluginNameOf, validateParameters } from "./documents.js";
import type { Invocations } from "./invocations.js";
import {
  type Command,
  type Invocation,
  isTerminal,
  type SendCommandInput,
  type SsmOptions,
} from "./records.js";
import { isManaged } from "./registration.js";
import type { Scripts } from "./scripts.js";
import { invocationKind, pendingSteps, type StepRunner } from "./step-runner.js";

/**
 * Instances one SendCommand may name, in `InstanceIds` or in one target's values (the API reference's
 * length constraint): https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
 */
export const SEND_COMMAND_MAX_INSTANCES = 50;

/**
 * Run Command: SendCommand with its checks and targets, one invocation per instance that becomes
 * visible a moment after the call (eventual consistency) and reaches the instance after a delivery
 * delay, CancelCommand, and the invocations an instance shutting down fails.
 */
export class RunCommand {
  constructor(
    private readonly world: WorldServices,
    private readonly invocations: Invocations,
    private readonly distributor: Distributor,
    private readonly scripts: Scripts,
    private readonly documents: DocumentStore,
    private readonly stepRunner: StepRunner,
    private readonly options: SsmOptions,
  ) {
    world.events.on("instance.terminating", ({ instance }) => this.failOnShutdown(instance));
  }

  send(input: SendCommandInput): Command {
    const documentName = input.DocumentName;
    if (!documentName) throw constraintViolation("documentName", "null", "Member must not be null");
    const document = this.documents.commandDocument(documentName);
    if (!DOCUMENTS.includes(documentName) && !document) {
      throw new AwsServiceError("InvalidDocument", `Document with name ${documentName} does not exist.`);
    }
    const instanceIds = [...new Set(input.InstanceIds ?? [])];
    if ((input.InstanceIds ?? []).length > SEND_COMMAND_MAX_INSTANCES) {
      throw constraintViolation(
        "instanceIds",
        input.InstanceIds,
        "Member must have length less than or equal to 50",
      );
    }
    for (const target of input.Targets ?? []) {
      if ((target.Values ?? []).length > SEND_COMMAND_MAX_INSTANCES) {
        throw constraintViolation(
          "targets.member.values",
          target.Values,
          "Member must have length less than or equal to 50",
        );
      }
      instanceIds.push(...this.resolveTarget(target));
    }
    if (instanceIds.length === 0) {
      throw new AwsServiceError(
        "InvalidInstanceId",
        `Instances [[]] not in a valid state for account ${ACCOUNT_ID}`,
      );
    }
    const timeoutSeconds = input.TimeoutSeconds ?? 3600;
    if (timeoutSeconds < 30 || timeoutSeconds > 2_592_000) {
      throw constraintViolation(
        "timeoutSeconds",
        timeoutSeconds,
        "Member must have value between 30 and 2592000",
      );
    }
    const comment = input.Comment ?? "";
    if (comment.length > 100) {
      throw constraintViolation("comment", comment, "Member must have length less than or equal to 100");
    }
    const parameters = input.Parameters ?? {};
    const resolvedParameters = document ? resolveParameters(document, parameters) : undefined;
    if (!document) validateParameters(documentName, parameters);
    const invalid = instanceIds.filter((id) => !isManaged(this.world.instances.find(id)));
    if (invalid.length > 0) {
      // The whole request is refused when one target is not a managed, running node.
      throw new AwsServiceError(
        "InvalidInstanceId",
        `Instances [[${invalid.join(", ")}]] not in a valid state for account ${ACCOUNT_ID}`,
      );
    }
    const now = this.world.now();
    const command: Command = {
      commandId: this.world.rng.fork(`command:${this.invocations.commands.size}`).uuid(),
      documentName,
      comment,
      parameters,
      instanceIds,
      targets: (input.Targets ?? []).map((target) => ({
        Key: target.Key ?? "",
        Values: target.Values ?? [],
      })),
      requestedAt: now,
      timeoutSeconds,
      maxConcurrency: input.MaxConcurrency ?? "50",
      maxErrors: input.MaxErrors ?? "0",
      invocations: [],
      resolvedParameters,
    };
    this.invocations.commands.set(command.commandId, command);
    for (const instanceId of instanceIds) {
      const invocation = this.start(command, this.world.instances.get(instanceId), "api");
      command.invocations.push(invocation);
    }
    this.world.trace.record({
      at: now,
      kind: "ssm.command",
      message: `SendCommand ${documentName} to ${instanceIds.length} instance(s)`,
      data: { commandId: command.commandId, documentName, instanceIds, comment },
    });
    return command;
  }

  /** Sends the command to one instance; it runs once delivered, if the instance is still reachable. */
  start(command: Command, instance: Instance, source: Invocation["source"]): Invocation {
    const rng = this.world.rng.fork(`invocation:${command.commandId}:${instance.id}`);
    const now = this.world.now();
    // A document created in the account runs step by step; the AWS documents as one plugin.
    const parameters = command.resolvedParameters;
    const document = parameters ? this.documents.commandDocument(command.documentName) : undefined;
    const steps = document && parameters ? pendingSteps(document, parameters) : undefined;
    const kind = steps ? invocationKind(steps) : classifyCommand(command);
    const invocation: Invocation = {
      commandId: command.commandId,
      instanceId: instance.id,
      documentName: command.documentName,
      comment: command.comment,
      requestedAt: now,
      visibleAt: now + rng.draw(this.options.visibilitySeconds ?? { min: 0.2, max: 1.5 }) * 1000,
      status: "Pending",
      statusDetails: "Pending",
      responseCode: -1,
      output: "",
      errorOutput: "",
      pluginName: steps ? "" : pluginNameOf(command.documentName),
      kind,
      packageName: kind === "install" && !steps ? command.parameters.name?.[0] : undefined,
      steps,
      source,
      timers: [],
    };
    this.invocations.add(invocation);
    // A document's install counts when its install step starts (step-runner.ts).
    if (kind === "install" && !steps) {
      this.distributor.noteInstallSent(this.invocations.target(invocation), instance);
    }
    const delivery = rng.draw(this.options.deliverySeconds ?? { min: 0.5, max: 2 }) * 1000;
    invocation.timers.push(
      this.world.scheduler.after(delivery, () => {
        if (invocation.status !== "Pending") return;
        if (!isManaged(instance)) {
          this.invocations.finish(
            invocation,
            "Failed",
            "Undeliverable",
            -1,
            "",
            "The command could not be delivered to the instance.",
          );
          return;
        }
        if (document && parameters) {
          this.stepRunner.run(invocation, instance, document, parameters, rng);
        } else if (kind === "install") {
          this.distributor.install(
            this.invocations.target(invocation),
            instance,
            {
              packageName: command.parameters.name?.[0] ?? "",
              version: command.parameters.version?.[0] ?? "",
            },
            rng,
          );
        } else this.scripts.run(this.invocations.target(invocation), instance, rng);
      }),
    );
    return invocation;
  }

  cancel(commandId: string, instanceIds?: string[]): void {
    const command = this.invocations.commands.get(commandId);
    if (!command) throw new AwsServiceError("InvalidCommandId", "");
    for (const invocation of command.invocations) {
      if (instanceIds && instanceIds.length > 0 && !instanceIds.includes(invocation.instanceId)) continue;
      if (isTerminal(invocation.status)) continue;
      this.invocations.finish(invocation, "Cancelled", "Cancelled", -1, invocation.output, "");
    }
  }

  /** The instances a target names: ids as given, or the managed instances of Auto Scaling groups. */
  private resolveTarget(target: { Key?: string; Values?: string[] }): string[] {
    const values = target.Values ?? [];
    if (target.Key === "InstanceIds") return values;
    if (target.Key === `tag:${GROUP_TAG}`) {
      return values
        .flatMap((name) => this.world.instances.inGroup(name))
        .filter((instance) => isManaged(instance))
        .map((instance) => instance.id);
    }
    throw new AwsServiceError(
      "InvalidParameters",
      `Target key ${target.Key} is not supported by this sandbox`,
    );
  }

  /** EC2 shutting down: nothing more reaches the instance; unfinished invocations fail. */
  private failOnShutdown(instance: Instance): void {
    for (const invocation of this.invocations.of(instance.id)) {
      if (isTerminal(invocation.status)) continue;
      if (invocation.status === "Pending") {
        this.invocations.finish(
          invocation,
          "Failed",
          "Undeliverable",
          -1,
          "",
          "The instance is shutting down or terminated.",
        );
      } else {
        this.invocations.finish(
          invocation,
          "Failed",
          "Failed",
          -1,
          invocation.output,
          "The instance was terminated while the command ran.",
        );
      }
    }
    instance.changed.notify();
  }
}
