import { type CodeDeployAgents, isAgentCurrent } from "../agent.js";
import type { Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import { Distributor } from "./distributor.js";
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

/**
 * Systems Manager: registration of instances (registration.ts), Run Command with its invocations and
 * eventual consistency (run-command.ts, invocations.ts, documents.ts), Distributor installs of the
 * CodeDeploy agent (distributor.ts), scripts and the service's verification answered from the
 * instance's real agent (scripts.ts), and State Manager associations (state-manager.ts).
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

  constructor(
    world: WorldServices,
    agents: CodeDeployAgents,
    readonly options: SsmOptions = {},
  ) {
    this.store = new Invocations(world);
    this.registration = new Registration(world, options);
    this.distributor = new Distributor(world, this.store, agents, this.counters, options);
    const scripts = new Scripts(world, this.store, this.counters, options);
    this.runCommand = new RunCommand(world, this.store, this.distributor, scripts, options);
    this.associations = new AssociationModel(world, this.store, this.runCommand);
    this.commands = this.store.commands;
    this.invocations = this.store.all;
  }

  get packageVersions(): Record<string, string[]> {
    return this.distributor.packageVersions;
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
