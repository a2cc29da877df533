import { AGENT_PACKAGES, type AgentPackage } from "../../../functions/core/contract.js";
import type { CodeDeployAgents } from "../agent.js";
import type { Instance } from "../instances.js";
import type { Random } from "../random.js";
import type { WorldServices } from "../services.js";
import type { Invocations, PluginTarget } from "./invocations.js";
import { installInFlight, packageBeingInstalled, type SsmCounters, type SsmOptions } from "./records.js";

/** Published versions per Distributor package, oldest first; the last one is "latest". */
export const DEFAULT_PACKAGE_VERSIONS: Record<string, string[]> = {
  AWSCodeDeployAgent: ["1.6.0", "1.7.1", "1.8.0", "1.8.1"],
  AWSCodeDeployAgentV2: ["2.0.1", "2.1.0"],
};

/** What an install asks Distributor for: a package, and a version ("" or "latest" for the newest). */
export interface InstallRequest {
  packageName: string;
  version: string;
}

/**
 * Distributor installs of the CodeDeploy agent (AWS-ConfigureAWSPackage, or an aws:configurePackage
 * step of a document): the per-package lock on the instance, the published versions, the no-op
 * reinstall of a version Distributor itself installed, and an install that takes time and can fail or
 * leave the agent stopped.
 */
export class Distributor {
  /** What Distributor publishes now: a copy of the options' list, which `publish` and `withdraw` change. */
  private published: Record<string, string[]> | undefined;
  /** Windows (AWS ms, [from, until)) in which every install fails before it starts, and why. */
  private readonly outages: { from: number; until: number; message: string }[] = [];

  constructor(
    private readonly world: WorldServices,
    private readonly invocations: Invocations,
    private readonly agents: CodeDeployAgents,
    private readonly counters: SsmCounters,
    private readonly options: SsmOptions,
  ) {}

  get packageVersions(): Record<string, string[]> {
    return this.published ?? this.options.packageVersions ?? DEFAULT_PACKAGE_VERSIONS;
  }

  private ownList(): Record<string, string[]> {
    this.published ??= Object.fromEntries(
      Object.entries(this.options.packageVersions ?? DEFAULT_PACKAGE_VERSIONS).map(([name, versions]) => [
        name,
        [...versions],
      ]),
    );
    return this.published;
  }

  /**
   * AWS publishes a new version of a package: it becomes the default version (DescribeDocument
   * answers its VersionName, and an install of "latest" gets it).
   */
  publish(packageName: string, version: string): void {
    const list = this.ownList();
    const versions = (list[packageName] ?? []).filter((candidate) => candidate !== version);
    list[packageName] = [...versions, version];
    this.world.trace.record({
      at: this.world.now(),
      kind: "distributor.published",
      message: `Distributor publishes ${packageName} ${version} as its default version`,
      data: { packageName, version },
    });
  }

  /** The package is no longer published in the Region (DescribeDocument: InvalidDocument; installs: not found). */
  withdraw(packageName: string): string[] {
    const list = this.ownList();
    const versions = list[packageName] ?? [];
    delete list[packageName];
    this.world.trace.record({
      at: this.world.now(),
      kind: "distributor.withdrawn",
      message: `Distributor no longer publishes ${packageName}`,
      data: { packageName },
    });
    return versions;
  }

  /** Every install that starts within the window fails at once with Distributor's error. */
  outage(window: { from: number; until: number; message?: string }): void {
    this.outages.push({
      ...window,
      message:
        window.message ??
        "Failed to retrieve manifest: InternalServerError: the Distributor service is temporarily unavailable",
    });
  }

  private outageAt(now: number): string | undefined {
    return this.outages.find((outage) => now >= outage.from && now < outage.until)?.message;
  }

  /**
   * Counts an install as it is sent (AWS-ConfigureAWSPackage) or as a document's install step starts,
   * and a duplicate when another install is still in flight there.
   */
  noteInstallSent(target: PluginTarget, instance: Instance): void {
    const { invocation } = target;
    const packageName = target.step?.packageName ?? invocation.packageName;
    // Another team's package (the CloudWatch agent, Inspector...) is no agent install.
    if (!AGENT_PACKAGES.includes(packageName as AgentPackage)) return;
    const inFlight = this.invocations
      .of(instance.id)
      .filter(
        (other) =>
          other !== invocation &&
          other.instanceId === instance.id &&
          installInFlight(other) &&
          (other.steps ? packageBeingInstalled(other) : other.packageName) === packageName,
      );
    instance.milestones.installSent ??= target.step ? this.world.now() : invocation.requestedAt;
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
  install(target: PluginTarget, instance: Instance, request: InstallRequest, rng: Random): void {
    const { packageName } = request;
    const requested = request.version.trim();
    // configurepackage holds a lock per package: a second Install of the same package fails at once.
    const locked = this.invocations
      .of(instance.id)
      .some(
        (other) =>
          other !== target.invocation &&
          other.instanceId === instance.id &&
          packageBeingInstalled(other) === packageName,
      );
    target.begin();
    if (locked) {
      this.fail(target, `Package "${packageName}" is already in the process of action "Install"`);
      return;
    }
    const outage = this.outageAt(this.world.now());
    if (outage) {
      this.fail(target, outage);
      return;
    }
    const versions = this.packageVersions[packageName];
    if (!versions) {
      this.fail(
        target,
        `Failed to retrieve manifest: ResourceNotFoundException: package ${packageName} not found`,
      );
      return;
    }
    const version = requested === "" || requested === "latest" ? versions.at(-1)! : requested;
    if (!versions.includes(version)) {
      this.fail(
        target,
        `Failed to retrieve manifest: ResourceNotFoundException: version ${version} of package ${packageName} not found`,
      );
      return;
    }
    if (!AGENT_PACKAGES.includes(packageName as AgentPackage)) {
      // Another package: it takes its time and leaves the CodeDeploy agent alone.
      target.after(rng.draw(this.options.installSeconds ?? { median: 25, p95: 60, min: 8 }) * 1000, () => {
        if (target.running)
          target.finish("Success", "Success", 0, `Successfully installed ${packageName} ${version}`, "");
      });
      return;
    }
    if (
      instance.agent.installedByDistributor &&
      instance.agent.package === packageName &&
      instance.agent.version === version &&
      instance.agent.running
    ) {
      // Distributor leaves a package it installed alone when the requested version is already there.
      target.after(rng.draw(this.options.scriptSeconds ?? { min: 1, max: 3 }) * 1000, () => {
        if (!target.running) return;
        target.finish(
          "Success",
          "Success",
          0,
          `Package ${packageName} ${version} is already installed\n`,
          "",
        );
      });
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
    target.after(duration, () => {
      if (!target.running) return;
      const header = `Initiating ${packageName} ${version} install\nPlugin aws:runShellScript ResultStatus Success\ninstall output: Running install.sh`;
      if (outcome === "failed") {
        target.finish(
          "Failed",
          "Failed",
          1,
          `${header}\nFailed to install package; install status Failed`,
          "install.sh: the agent's installer exited with status 1",
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
        ...(outcome === "silent" ? { broken: true } : {}),
      });
      target.finish(
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
        data: { version, agentRunning: outcome === "ok", source: target.invocation.source },
      });
    });
  }

  /** An install that fails before it starts: the lock, an unknown package or version. */
  private fail(target: PluginTarget, errorOutput: string): void {
    target.finish("Failed", "Failed", 1, "", errorOutput);
  }
}
