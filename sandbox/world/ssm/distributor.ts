import { AGENT_PACKAGES, type AgentPackage } from "../../../functions/core/contract.js";
import type { CodeDeployAgents } from "../agent.js";
import type { Instance } from "../instances.js";
import type { Random } from "../random.js";
import type { WorldServices } from "../services.js";
import type { Invocations } from "./invocations.js";
import { type Command, type Invocation, isTerminal, type SsmCounters, type SsmOptions } from "./records.js";

/** Published versions per Distributor package, oldest first; the last one is "latest". */
export const DEFAULT_PACKAGE_VERSIONS: Record<string, string[]> = {
  AWSCodeDeployAgent: ["1.6.0", "1.7.1", "1.8.0", "1.8.1"],
  AWSCodeDeployAgentV2: ["2.0.1", "2.1.0"],
};

/**
 * Distributor installs of the CodeDeploy agent (AWS-ConfigureAWSPackage): the per-package lock on the
 * instance, the published versions, the no-op reinstall of a version Distributor itself installed,
 * and an install that takes time and can fail or leave the agent stopped.
 */
export class Distributor {
  constructor(
    private readonly world: WorldServices,
    private readonly invocations: Invocations,
    private readonly agents: CodeDeployAgents,
    private readonly counters: SsmCounters,
    private readonly options: SsmOptions,
  ) {}

  get packageVersions(): Record<string, string[]> {
    return this.options.packageVersions ?? DEFAULT_PACKAGE_VERSIONS;
  }

  /** Counts an install as it is sent, and a duplicate when another is still in flight there. */
  noteInstallSent(invocation: Invocation, instance: Instance): void {
    const inFlight = this.invocations
      .of(instance.id)
      .filter(
        (other) =>
          other !== invocation &&
          other.kind === "install" &&
          other.instanceId === instance.id &&
          !isTerminal(other.status),
      );
    instance.milestones.installSent ??= invocation.requestedAt;
    this.counters.installsSent++;
    if (inFlight.length > 0) {
      this.counters.duplicateInstalls++;
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

  /** Runs a delivered install on the instance. */
  install(invocation: Invocation, instance: Instance, command: Command, rng: Random): void {
    const packageName = command.parameters.name?.[0] ?? "";
    const requested = (command.parameters.version?.[0] ?? "").trim();
    // configurepackage holds a lock per package: a second Install of the same package fails at once.
    const locked = this.invocations
      .of(instance.id)
      .some(
        (other) =>
          other !== invocation &&
          other.kind === "install" &&
          other.packageName === packageName &&
          other.instanceId === instance.id &&
          other.status === "InProgress",
      );
    this.invocations.markInProgress(invocation);
    if (locked) {
      this.fail(invocation, `Package "${packageName}" is already in the process of action "Install"`);
      return;
    }
    const versions = this.packageVersions[packageName];
    if (!versions || !AGENT_PACKAGES.includes(packageName as AgentPackage)) {
      this.fail(
        invocation,
        `Failed to retrieve manifest: ResourceNotFoundException: package ${packageName} not found`,
      );
      return;
    }
    const version = requested === "" || requested === "latest" ? versions.at(-1)! : requested;
    if (!versions.includes(version)) {
      this.fail(
        invocation,
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
          this.invocations.finish(
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
    this.agents.remove(instance);
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
          this.invocations.finish(
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
        this.agents.install(instance, {
          package: packageName as AgentPackage,
          version,
          running: outcome === "ok",
          installedByDistributor: true,
        });
        this.invocations.finish(
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

  /** An install that fails before it starts: the lock, an unknown package or version. */
  private fail(invocation: Invocation, errorOutput: string): void {
    this.invocations.finish(invocation, "Failed", "Failed", 1, "", errorOutput);
  }
}
