import {
  AGENT_PACKAGES,
  type AgentPackage,
  INSTALL_DOCUMENT,
  LINUX_VERIFY_DOCUMENT,
  VERIFY_MARKER,
  WINDOWS_VERIFY_DOCUMENT,
} from "../../functions/core/contract.js";
import type { ImageProfile, Instance } from "./instances.js";
import { compareVersions, type Distribution, type Random } from "./random.js";
import type { TimerHandle } from "./scheduler.js";
import { ACCOUNT_ID, AwsServiceError, constraintViolation } from "./service-error.js";
import type { World } from "./world.js";

/** Published versions per Distributor package, oldest first; the last one is "latest". */
export const DEFAULT_PACKAGE_VERSIONS: Record<string, string[]> = {
  AWSCodeDeployAgent: ["1.6.0", "1.7.1", "1.8.0", "1.8.1"],
  AWSCodeDeployAgentV2: ["2.0.1", "2.1.0"],
};

export const CONFIGURE_PACKAGE = INSTALL_DOCUMENT;
export const RUN_SHELL_SCRIPT = LINUX_VERIFY_DOCUMENT;
export const RUN_POWERSHELL_SCRIPT = WINDOWS_VERIFY_DOCUMENT;

export interface SsmOptions {
  packageVersions?: Record<string, string[]>;
  /** AWS seconds from launch to SSM registration when the AMI does not say. */
  registrationDelaySeconds?: Distribution;
  windowsRegistrationDelaySeconds?: Distribution;
  /** AWS seconds an agent install takes once the command reached the instance. */
  installSeconds?: Distribution;
  windowsInstallSeconds?: Distribution;
  installFailureProbability?: number;
  /** Probability that an install reports Success although the agent does not run afterwards. */
  installSucceedsWithoutAgentProbability?: number;
  /** AWS seconds until a sent command reaches the instance's SSM Agent. */
  deliverySeconds?: Distribution;
  /** AWS seconds until a new invocation shows in List/GetCommandInvocation (eventual consistency). */
  visibilitySeconds?: Distribution;
  /** AWS seconds a shell script (verification or other) runs. */
  scriptSeconds?: Distribution;
}

export type InvocationStatus =
  | "Pending"
  | "InProgress"
  | "Delayed"
  | "Success"
  | "Cancelled"
  | "TimedOut"
  | "Failed"
  | "Cancelling";
const TERMINAL = new Set<InvocationStatus>(["Success", "Cancelled", "TimedOut", "Failed"]);

export interface Invocation {
  commandId: string;
  instanceId: string;
  documentName: string;
  comment: string;
  requestedAt: number;
  visibleAt: number;
  status: InvocationStatus;
  statusDetails: string;
  responseCode: number;
  startedAt?: number;
  endedAt?: number;
  output: string;
  errorOutput: string;
  pluginName: string;
  kind: "install" | "verify" | "script" | "other";
  packageName?: string;
  /** Who started it: a SendCommand call or a State Manager association (not listed as a command). */
  source: "api" | "association";
  timers: TimerHandle[];
}

export interface Command {
  commandId: string;
  documentName: string;
  comment: string;
  parameters: Record<string, string[]>;
  instanceIds: string[];
  targets: { Key: string; Values: string[] }[];
  requestedAt: number;
  timeoutSeconds: number;
  maxConcurrency: string;
  maxErrors: string;
  invocations: Invocation[];
}

export interface SendCommandInput {
  DocumentName?: string;
  DocumentVersion?: string;
  InstanceIds?: string[];
  Targets?: { Key?: string; Values?: string[] }[];
  Parameters?: Record<string, string[]>;
  Comment?: string;
  TimeoutSeconds?: number;
  MaxConcurrency?: string;
  MaxErrors?: string;
}

function pluginNameOf(documentName: string): string {
  if (documentName === CONFIGURE_PACKAGE) return "configurePackage";
  if (documentName === RUN_POWERSHELL_SCRIPT) return "aws:runPowerShellScript";
  return "aws:runShellScript";
}

/** The status words the SSM API uses in StatusDetails (note the spaces). */
function detailsOf(status: InvocationStatus): string {
  return status === "InProgress" ? "In Progress" : status;
}

/**
 * Systems Manager: registration of instances, Run Command with its invocations and eventual
 * consistency, Distributor installs of the CodeDeploy agent, and the service's verification script
 * answered from the instance's real agent state.
 */
export class SsmModel {
  readonly commands = new Map<string, Command>();
  readonly invocations: Invocation[] = [];
  private readonly invocationsByInstance = new Map<string, Invocation[]>();
  private readonly registrationListeners = new Set<(instance: Instance) => void>();

  constructor(
    private readonly world: World,
    readonly options: SsmOptions = {},
  ) {}

  get packageVersions(): Record<string, string[]> {
    return this.options.packageVersions ?? DEFAULT_PACKAGE_VERSIONS;
  }

  latestVersion(packageName: string): string | undefined {
    return this.packageVersions[packageName]?.at(-1);
  }

  /** Every invocation sent to one instance, oldest first. */
  invocationsOf(instanceId: string): Invocation[] {
    return this.invocationsByInstance.get(instanceId) ?? [];
  }

  onRegistered(listener: (instance: Instance) => void): void {
    this.registrationListeners.add(listener);
  }

  scheduleRegistration(instance: Instance, rng: Random, image: ImageProfile): void {
    if (rng.chance(image.neverRegistersProbability ?? 0)) {
      this.world.trace.record({
        at: this.world.now(),
        kind: "instance.never-registers",
        instanceId: instance.id,
        groupName: instance.groupName ?? undefined,
        message: `${instance.id} will never register with SSM`,
      });
      return;
    }
    const fallback =
      instance.platform === "Windows"
        ? (this.options.windowsRegistrationDelaySeconds ?? { median: 150, p95: 300, min: 60 })
        : (this.options.registrationDelaySeconds ?? { median: 40, p95: 90, min: 15 });
    const delayMs = rng.draw(image.registrationDelaySeconds ?? fallback) * 1000;
    instance.ssm.registersAt = instance.launchedAt + delayMs;
    this.world.scheduler.after(delayMs, () => this.register(instance));
  }

  register(instance: Instance): void {
    if (instance.terminated || instance.ssm.registeredAt !== null) return;
    const now = this.world.now();
    instance.ssm.registeredAt = now;
    instance.milestones.ssmOnline = now;
    instance.changed.notify();
    this.world.trace.record({
      at: now,
      kind: "instance.ssm-online",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} SSM Online`,
    });
    for (const listener of this.registrationListeners) listener(instance);
  }

  /** Managed and reachable: registered, and EC2 not shutting down or terminated. */
  isManaged(instance: Instance | undefined): instance is Instance {
    return (
      instance !== undefined &&
      instance.ssm.registeredAt !== null &&
      !instance.terminated &&
      !instance.lifecycleState.startsWith("Terminating")
    );
  }

  /** Instances DescribeInstanceInformation answers for ("does not return information for nodes that are Stopped or Terminated"). */
  managedInstances(): Instance[] {
    return [...this.world.instances.values()]
      .filter((instance) => instance.ssm.registeredAt !== null && !instance.terminated)
      .sort((a, b) => (a.ssm.registeredAt ?? 0) - (b.ssm.registeredAt ?? 0));
  }

  sendCommand(input: SendCommandInput): Command {
    const documentName = input.DocumentName;
    if (!documentName) throw constraintViolation("documentName", "null", "Member must not be null");
    if (![CONFIGURE_PACKAGE, RUN_SHELL_SCRIPT, RUN_POWERSHELL_SCRIPT].includes(documentName)) {
      throw new AwsServiceError("InvalidDocument", `Document with name ${documentName} does not exist.`);
    }
    const instanceIds = [...new Set(input.InstanceIds ?? [])];
    if ((input.InstanceIds ?? []).length > 50) {
      throw constraintViolation(
        "instanceIds",
        input.InstanceIds,
        "Member must have length less than or equal to 50",
      );
    }
    for (const target of input.Targets ?? []) {
      if ((target.Values ?? []).length > 50) {
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
    this.validateParameters(documentName, parameters);
    const invalid = instanceIds.filter((id) => !this.isManaged(this.world.instances.get(id)));
    if (invalid.length > 0) {
      // The whole request is refused when one target is not a managed, running node.
      throw new AwsServiceError(
        "InvalidInstanceId",
        `Instances [[${invalid.join(", ")}]] not in a valid state for account ${ACCOUNT_ID}`,
      );
    }
    const now = this.world.now();
    const command: Command = {
      commandId: this.world.rng.fork(`command:${this.commands.size}`).uuid(),
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
    };
    this.commands.set(command.commandId, command);
    for (const instanceId of instanceIds) {
      const invocation = this.startInvocation(command, this.world.instance(instanceId), "api");
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

  private resolveTarget(target: { Key?: string; Values?: string[] }): string[] {
    const values = target.Values ?? [];
    if (target.Key === "InstanceIds") return values;
    if (target.Key === "tag:aws:autoscaling:groupName") {
      return values
        .flatMap((name) => [...(this.world.autoScaling.groups.get(name)?.instances ?? [])])
        .filter((id) => this.isManaged(this.world.instances.get(id)));
    }
    throw new AwsServiceError(
      "InvalidParameters",
      `Target key ${target.Key} is not supported by this sandbox`,
    );
  }

  private validateParameters(documentName: string, parameters: Record<string, string[]>): void {
    for (const [name, value] of Object.entries(parameters)) {
      if (!Array.isArray(value))
        throw new AwsServiceError("InvalidParameters", `Parameter "${name}" must be a list of strings.`);
    }
    const allowed =
      documentName === CONFIGURE_PACKAGE
        ? ["action", "installationType", "name", "version", "additionalArguments"]
        : ["commands", "workingDirectory", "executionTimeout"];
    for (const name of Object.keys(parameters)) {
      if (!allowed.includes(name)) {
        throw new AwsServiceError(
          "InvalidParameters",
          `Parameter "${name}" is not defined in document ${documentName}.`,
        );
      }
    }
    if (documentName === CONFIGURE_PACKAGE) {
      const action = parameters.action?.[0];
      if (action !== "Install" && action !== "Uninstall") {
        throw new AwsServiceError(
          "InvalidParameters",
          'Parameter "action" must be one of: Install, Uninstall.',
        );
      }
      const name = parameters.name?.[0] ?? "";
      if (!/^[a-zA-Z0-9/:.\-_]{1,128}$/.test(name)) {
        throw new AwsServiceError("InvalidParameters", `Parameter "name" has an invalid value "${name}".`);
      }
      const installationType = parameters.installationType?.[0] ?? "Uninstall and reinstall";
      if (installationType !== "Uninstall and reinstall" && installationType !== "In-place update") {
        throw new AwsServiceError(
          "InvalidParameters",
          'Parameter "installationType" must be one of: Uninstall and reinstall, In-place update.',
        );
      }
      const additional = parameters.additionalArguments?.[0] ?? "{}";
      try {
        const parsed: unknown = JSON.parse(additional);
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
          throw new TypeError("not an object");
      } catch {
        throw new AwsServiceError(
          "InvalidParameters",
          'Parameter "additionalArguments" must be a JSON object of strings.',
        );
      }
    } else if (!parameters.commands || parameters.commands.length === 0) {
      throw new AwsServiceError("InvalidParameters", 'Parameter "commands" is required.');
    }
  }

  private startInvocation(command: Command, instance: Instance, source: "api" | "association"): Invocation {
    const rng = this.world.rng.fork(`invocation:${command.commandId}:${instance.id}`);
    const now = this.world.now();
    const documentName = command.documentName;
    const firstLine = (command.parameters.commands ?? []).join("\n").split("\n")[0]?.trim();
    const kind: Invocation["kind"] =
      documentName === CONFIGURE_PACKAGE
        ? command.parameters.action?.[0] === "Install"
          ? "install"
          : "other"
        : firstLine === VERIFY_MARKER
          ? "verify"
          : "script";
    const invocation: Invocation = {
      commandId: command.commandId,
      instanceId: instance.id,
      documentName,
      comment: command.comment,
      requestedAt: now,
      visibleAt: now + rng.draw(this.options.visibilitySeconds ?? { min: 0.2, max: 1.5 }) * 1000,
      status: "Pending",
      statusDetails: "Pending",
      responseCode: -1,
      output: "",
      errorOutput: "",
      pluginName: pluginNameOf(documentName),
      kind,
      packageName: kind === "install" ? command.parameters.name?.[0] : undefined,
      source,
      timers: [],
    };
    this.invocations.push(invocation);
    const ofInstance = this.invocationsByInstance.get(instance.id) ?? [];
    ofInstance.push(invocation);
    this.invocationsByInstance.set(instance.id, ofInstance);
    if (kind === "install") this.noteInstallSent(invocation, instance);
    const delivery = rng.draw(this.options.deliverySeconds ?? { min: 0.5, max: 2 }) * 1000;
    invocation.timers.push(
      this.world.scheduler.after(delivery, () => {
        if (invocation.status !== "Pending") return;
        if (!this.isManaged(instance)) {
          this.finish(
            invocation,
            "Failed",
            "Undeliverable",
            -1,
            "",
            "The command could not be delivered to the instance.",
          );
          return;
        }
        if (kind === "install") this.runInstall(invocation, instance, command, rng);
        else this.runScript(invocation, instance, rng);
      }),
    );
    return invocation;
  }

  private noteInstallSent(invocation: Invocation, instance: Instance): void {
    const inFlight = this.invocationsOf(instance.id).filter(
      (other) =>
        other !== invocation &&
        other.kind === "install" &&
        other.instanceId === instance.id &&
        !TERMINAL.has(other.status),
    );
    instance.milestones.installSent ??= invocation.requestedAt;
    this.world.counters.installsSent++;
    if (inFlight.length > 0) {
      this.world.counters.duplicateInstalls++;
      this.world.trace.record({
        at: this.world.now(),
        kind: "install.duplicate",
        instanceId: instance.id,
        groupName: instance.groupName ?? undefined,
        message: `${instance.id} second install sent while one is in flight`,
        data: { commandId: invocation.commandId, inFlight: inFlight.map((other) => other.commandId) },
      });
    }
  }

  private runInstall(invocation: Invocation, instance: Instance, command: Command, rng: Random): void {
    const packageName = command.parameters.name?.[0] ?? "";
    const requested = (command.parameters.version?.[0] ?? "").trim();
    // configurepackage holds a lock per package: a second Install of the same package fails at once.
    const locked = this.invocationsOf(instance.id).some(
      (other) =>
        other !== invocation &&
        other.kind === "install" &&
        other.packageName === packageName &&
        other.instanceId === instance.id &&
        other.status === "InProgress",
    );
    this.markInProgress(invocation);
    if (locked) {
      this.finish(
        invocation,
        "Failed",
        "Failed",
        1,
        "",
        `Package "${packageName}" is already in the process of action "Install"`,
      );
      return;
    }
    const versions = this.packageVersions[packageName];
    if (!versions || !AGENT_PACKAGES.includes(packageName as AgentPackage)) {
      this.finish(
        invocation,
        "Failed",
        "Failed",
        1,
        "",
        `Failed to retrieve manifest: ResourceNotFoundException: package ${packageName} not found`,
      );
      return;
    }
    const version = requested === "" || requested === "latest" ? versions.at(-1)! : requested;
    if (!versions.includes(version)) {
      this.finish(
        invocation,
        "Failed",
        "Failed",
        1,
        "",
        `Failed to retrieve manifest: ResourceNotFoundException: version ${version} of package ${packageName} not found`,
      );
      return;
    }
    if (
      instance.agent.installedByDistributor &&
      instance.agent.package === packageName &&
      instance.agent.version === version &&
      instance.agent.running
    ) {
      // Distributor leaves a package it installed alone when the requested version is already there.
      invocation.timers.push(
        this.world.scheduler.after(rng.draw(this.options.scriptSeconds ?? { min: 1, max: 3 }) * 1000, () => {
          if (invocation.status !== "InProgress") return;
          this.finish(
            invocation,
            "Success",
            "Success",
            0,
            `Package ${packageName} ${version} is already installed\n`,
            "",
          );
        }),
      );
      return;
    }
    // "Uninstall and reinstall": the running agent stops now, which fails a lifecycle event in progress.
    const wasRunning = instance.agent.running;
    instance.agent = { package: null, version: null, running: false };
    instance.changed.notify();
    if (wasRunning) this.world.codeDeploy.agentStopped(instance, "restart");
    const duration =
      rng.draw(
        instance.platform === "Windows"
          ? (this.options.windowsInstallSeconds ?? { median: 60, p95: 120, min: 20 })
          : (this.options.installSeconds ?? { median: 25, p95: 60, min: 8 }),
      ) * 1000;
    const failure = instance.faults.installFailureProbability ?? this.options.installFailureProbability ?? 0;
    const silent =
      instance.faults.installSucceedsWithoutAgentProbability ??
      this.options.installSucceedsWithoutAgentProbability ??
      0;
    const outcome = rng.chance(failure) ? "failed" : rng.chance(silent) ? "silent" : "ok";
    invocation.timers.push(
      this.world.scheduler.after(duration, () => {
        if (invocation.status !== "InProgress") return;
        const header = `Initiating ${packageName} ${version} install\nPlugin aws:runShellScript ResultStatus Success\ninstall output: Running install.sh`;
        if (outcome === "failed") {
          this.finish(
            invocation,
            "Failed",
            "Failed",
            1,
            `${header}\nFailed to install package; install status Failed`,
            "install.sh: failed to download the agent package (exit 1)",
          );
          this.world.trace.record({
            at: this.world.now(),
            kind: "install.failed",
            instanceId: instance.id,
            groupName: instance.groupName ?? undefined,
            message: `${instance.id} ${packageName} ${version} install failed`,
          });
          return;
        }
        instance.agent = {
          package: packageName as AgentPackage,
          version,
          running: outcome === "ok",
          installedByDistributor: true,
        };
        instance.milestones.installed = this.world.now();
        instance.changed.notify();
        if (outcome === "ok") {
          this.world.codeDeploy.agentStarted(instance);
          this.scheduleCrash(instance);
        }
        this.finish(
          invocation,
          "Success",
          "Success",
          0,
          `${header}\nSuccessfully installed ${packageName} ${version}`,
          "",
        );
        this.world.trace.record({
          at: this.world.now(),
          kind: "install.succeeded",
          instanceId: instance.id,
          groupName: instance.groupName ?? undefined,
          message: `${instance.id} ${packageName} ${version} installed${outcome === "silent" ? " (reported Success, agent not running)" : ""}`,
          data: { version, agentRunning: outcome === "ok", source: invocation.source },
        });
      }),
    );
  }

  /** An agent with a crash fault stops on its own a while after it started. */
  private scheduleCrash(instance: Instance): void {
    const after = instance.faults.agentCrashAfterSeconds;
    if (after === undefined) return;
    const started = instance.agent;
    this.world.scheduler.after(after * 1000, () => {
      if (instance.agent === started) this.crashAgent(instance);
    });
  }

  /** The CodeDeploy agent process dies (nothing restarts it). */
  crashAgent(instance: Instance): void {
    if (!instance.agent.running) return;
    instance.agent = { ...instance.agent, running: false };
    instance.changed.notify();
    this.world.codeDeploy.agentStopped(instance, "shutdown");
    this.world.trace.record({
      at: this.world.now(),
      kind: "agent.crashed",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} CodeDeploy agent ${instance.agent.version} stopped on its own`,
    });
  }

  private runScript(invocation: Invocation, instance: Instance, rng: Random): void {
    this.markInProgress(invocation);
    const duration = rng.draw(this.options.scriptSeconds ?? { min: 1, max: 3 }) * 1000;
    invocation.timers.push(
      this.world.scheduler.after(duration, () => {
        if (invocation.status !== "InProgress") return;
        const expected = instance.platform === "Windows" ? RUN_POWERSHELL_SCRIPT : RUN_SHELL_SCRIPT;
        if (invocation.documentName !== expected) {
          const platform = instance.platform === "Windows" ? "Windows" : "Linux";
          this.finish(
            invocation,
            "Failed",
            "Failed",
            1,
            "",
            `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, ${invocation.documentName === RUN_SHELL_SCRIPT ? "Linux" : "Windows"}]' (instance platform ${platform})`,
          );
          return;
        }
        if (invocation.kind !== "verify") {
          this.finish(invocation, "Success", "Success", 0, "", "");
          return;
        }
        const agent = instance.agent;
        const status = agent.package === null ? "missing" : agent.running ? "running" : "stopped";
        const line = `AGENTFIX_AGENT_STATUS=${status} AGENTFIX_AGENT_VERSION=${agent.version ?? ""}`;
        this.world.counters.verifications++;
        if (status === "running") {
          instance.milestones.verified = this.world.now();
          instance.changed.notify();
        }
        this.world.trace.record({
          at: this.world.now(),
          kind: status === "running" ? "verify.running" : "verify.not-running",
          instanceId: instance.id,
          groupName: instance.groupName ?? undefined,
          message: `${instance.id} verification: agent ${status} ${agent.version ?? ""}`.trim(),
        });
        this.finish(
          invocation,
          status === "running" ? "Success" : "Failed",
          status === "running" ? "Success" : "Failed",
          status === "running" ? 0 : 1,
          `${line}\n`,
          "",
        );
      }),
    );
  }

  private markInProgress(invocation: Invocation): void {
    invocation.status = "InProgress";
    invocation.statusDetails = "In Progress";
    invocation.startedAt = this.world.now();
  }

  private finish(
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

  /** EC2 shutting down: nothing more reaches the instance; unfinished invocations fail. */
  onInstanceTerminating(instance: Instance): void {
    if (instance.agent.running) {
      instance.agent = { ...instance.agent, running: false };
      this.world.codeDeploy.agentStopped(instance, "shutdown");
    }
    for (const invocation of this.invocationsOf(instance.id)) {
      if (TERMINAL.has(invocation.status)) continue;
      if (invocation.status === "Pending") {
        this.finish(
          invocation,
          "Failed",
          "Undeliverable",
          -1,
          "",
          "The instance is shutting down or terminated.",
        );
      } else {
        this.finish(
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

  cancelCommand(commandId: string, instanceIds?: string[]): void {
    const command = this.commands.get(commandId);
    if (!command) throw new AwsServiceError("InvalidCommandId", "");
    for (const invocation of command.invocations) {
      if (instanceIds && instanceIds.length > 0 && !instanceIds.includes(invocation.instanceId)) continue;
      if (TERMINAL.has(invocation.status)) continue;
      this.finish(invocation, "Cancelled", "Cancelled", -1, invocation.output, "");
    }
  }

  /** Runs an install the way a State Manager association does (no SendCommand, same on-instance lock). */
  installFromAssociation(
    instance: Instance,
    packageName: string,
    version: string,
    associationId: string,
  ): Invocation {
    const command: Command = {
      commandId: this.world.rng
        .fork(`association-run:${associationId}:${instance.id}:${this.invocations.length}`)
        .uuid(),
      documentName: CONFIGURE_PACKAGE,
      comment: `association ${associationId}`,
      parameters: {
        action: ["Install"],
        installationType: ["Uninstall and reinstall"],
        name: [packageName],
        version: [version],
      },
      instanceIds: [instance.id],
      targets: [],
      requestedAt: this.world.now(),
      timeoutSeconds: 3600,
      maxConcurrency: "50",
      maxErrors: "0",
      invocations: [],
    };
    const invocation = this.startInvocation(command, instance, "association");
    command.invocations.push(invocation);
    return invocation;
  }

  isTerminal(status: InvocationStatus): boolean {
    return TERMINAL.has(status);
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
    const completed = statuses.filter((status) => TERMINAL.has(status)).length;
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

  agentIsCurrent(instance: Instance, minimumVersion: string): boolean {
    return (
      instance.agent.running &&
      instance.agent.version !== null &&
      compareVersions(instance.agent.version, minimumVersion) >= 0
    );
  }
}
