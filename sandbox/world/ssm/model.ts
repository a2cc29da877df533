import { type CodeDeployAgents, isAgentCurrent } from "../agent.js";
import type { Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import type { CommandDocument } from "./command-documents.js";
import { Distributor } from "./distributor.js";
import { type CreateDocumentInput, type DocumentInfo, DocumentStore } from "./document-store.js";
import { Invocations } from "./invocations.js";
import {
  type Command,
  type Invocation,
  type InvocationStatus,
  isTerminal,
  type SendCommandInput,
  type SsmCounters,
  type SsmOptions,
} from "./records.js";
import { isManaged, Registration } from "./registration.js";
import { RunCommand } from "./run-command.js";
import { Scripts } from "./scripts.js";
import { AssociationModel } from "./state-manager.js";
import { StepRunner } from "./step-runner.js";

/**
 * Systems Manager: registration of instances (registration.ts), Run Command with its invocations and
 * eventual consistency (run-command.ts, invocations.ts, documents.ts), the account's documents and
 * the Command documents created in it (document-store.ts, command-documents.ts) run step by step
 * (step-runner.ts), Distributor installs of the CodeDeploy agent (distributor.ts), scripts and the
 * service's own scripts answered from the instance's real agent (scripts.ts), and State Manager
 * associations (state-manager.ts).
 */
export class SsmModel {
  readonly commands: Map<string, Command>;
  readonly invocations: Invocation[];
  readonly counters: SsmCounters = { duplicateInstalls: 0, installsSent: 0, verifications: 0 };
  readonly associations: AssociationModel;
  private readonly registration: Registration;
  private readonly distributor: Distributor;
  private readonly runCommand: RunCommand;
  private readonly store: Invocations;
  private readonly documents: DocumentStore;

  constructor(
    private readonly world: WorldServices,
    agents: CodeDeployAgents,
    readonly options: SsmOptions = {},
  ) {
    this.store = new Invocations(world);
    this.registration = new Registration(world, options);
    this.distributor = new Distributor(world, this.store, agents, this.counters, options);
    const scripts = new Scripts(world, agents, this.counters, options);
    this.documents = new DocumentStore(
      () => this.distributor.packageVersions,
      () => world.now(),
    );
    const stepRunner = new StepRunner(this.store, this.distributor, scripts);
    this.runCommand = new RunCommand(
      world,
      this.store,
      this.distributor,
      scripts,
      this.documents,
      stepRunner,
      options,
    );
    this.associations = new AssociationModel(world, this.store, this.runCommand);
    this.commands = this.store.commands;
    this.invocations = this.store.all;
  }

  get packageVersions(): Record<string, string[]> {
    return this.distributor.packageVersions;
  }

  /** AWS publishes a new default version of a Distributor package (now, or `atSeconds` from now). */
  publishPackageVersion(packageName: string, version: string, options: { atSeconds?: number } = {}): void {
    this.later(options.atSeconds, () => this.distributor.publish(packageName, version));
  }

  /**
   * The package stops being published in the Region (now, or `atSeconds` from now); published again,
   * with the same versions, after `forSeconds` when given.
   */
  withdrawPackage(packageName: string, options: { atSeconds?: number; forSeconds?: number } = {}): void {
    this.later(options.atSeconds, () => {
      const versions = this.distributor.withdraw(packageName);
      if (options.forSeconds === undefined) return;
      this.world.scheduler.after(options.forSeconds * 1000, () => {
        for (const version of versions) this.distributor.publish(packageName, version);
      });
    });
  }

  /**
   * Distributor is down from `atSeconds` from now (default now) for `forSeconds`: every install that
   * starts then fails at once with `message` (default a "Failed to retrieve manifest" error).
   */
  distributorOutage(options: { atSeconds?: number; forSeconds: number; message?: string }): void {
    const from = this.world.now() + (options.atSeconds ?? 0) * 1000;
    this.distributor.outage({ from, until: from + options.forSeconds * 1000, message: options.message });
    this.world.trace.record({
      at: this.world.now(),
      kind: "distributor.outage",
      message: `Distributor down for ${options.forSeconds} s${options.atSeconds ? ` from ${options.atSeconds} s on` : ""}`,
      data: { from, until: from + options.forSeconds * 1000 },
    });
  }

  private later(atSeconds: number | undefined, run: () => void): void {
    if (!atSeconds) run();
    else this.world.scheduler.after(atSeconds * 1000, run);
  }

  latestVersion(packageName: string): string | undefined {
    return this.packageVersions[packageName]?.at(-1);
  }

  /** Every invocation sent to one instance, oldest first. */
  invocationsOf(instanceId: string): Invocation[] {
    return this.store.of(instanceId);
  }

  /** Managed and reachable: registered, and EC2 not shutting down or terminated. */
  isManaged(instance: Instance | undefined): instance is Instance {
    return isManaged(instance);
  }

  /** Instances DescribeInstanceInformation answers for. */
  managedInstances(): Instance[] {
    return this.registration.managedInstances();
  }

  /**
   * Creates a document in the account (CreateDocument): a Command document of schemaVersion 2.2 whose
   * `content` is the document object (or its JSON text).
   */
  createDocument(input: CreateDocumentInput): DocumentInfo {
    return this.documents.create(input);
  }

  /** DescribeDocument / GetDocument: a document created here, an AWS Command document, or a package. */
  describeDocument(
    name: string,
    options: { versionName?: string; documentVersion?: string } = {},
  ): DocumentInfo {
    return this.documents.describe(name, options.versionName, options.documentVersion);
  }

  /** A Command document created in the account, undefined for any other name. */
  commandDocument(name: string): CommandDocument | undefined {
    return this.documents.commandDocument(name);
  }

  sendCommand(input: SendCommandInput): Command {
    return this.runCommand.send(input);
  }

  cancelCommand(commandId: string, instanceIds?: string[]): void {
    this.runCommand.cancel(commandId, instanceIds);
  }

  isTerminal(status: InvocationStatus): boolean {
    return isTerminal(status);
  }

  /** The command's overall status, derived from its invocations as SSM does. */
  commandStatus(command: Command): ReturnType<Invocations["commandStatus"]> {
    return this.store.commandStatus(command);
  }

  agentIsCurrent(instance: Instance, minimumVersion: string): boolean {
    return isAgentCurrent(instance, minimumVersion);
  }
}
