import { DISTRIBUTOR_DOCUMENT } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { Distribution } from "../random.js";
import type { TimerHandle } from "../scheduler.js";
import type { WorldServices } from "../services.js";
import type { Invocations } from "./invocations.js";
import type { Command } from "./records.js";
import { isManaged } from "./registration.js";
import type { RunCommand } from "./run-command.js";

/**
 * A State Manager association that runs AWS-ConfigureAWSPackage on the instances of some groups: when
 * an instance first registers with SSM and then on a schedule. This is the "association only"
 * remedy: it keeps agents current, but nothing holds a new instance out of service meanwhile.
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/state-manager-about.html
 */
export interface AssociationSpec {
  id: string;
  groupNames: string[];
  packageName: string;
  /** Empty installs the latest published version. */
  version?: string;
  /** AWS seconds between scheduled runs (a rate or cron expression in AWS); 0 = only on registration. */
  scheduleSeconds?: number;
  /** AWS seconds between an instance registering and the association running on it. */
  applyDelaySeconds?: Distribution;
}

export class AssociationModel {
  readonly associations: AssociationSpec[] = [];
  readonly runs: { associationId: string; instanceId: string; at: number }[] = [];
  private readonly timers: TimerHandle[] = [];

  constructor(
    private readonly world: WorldServices,
    private readonly invocations: Invocations,
    private readonly runCommand: RunCommand,
  ) {
    world.events.on("instance.registered", ({ instance }) => this.onRegistered(instance));
  }

  create(spec: AssociationSpec): void {
    this.associations.push(spec);
    if (spec.scheduleSeconds) {
      this.timers.push(
        this.world.scheduler.every(spec.scheduleSeconds * 1000, () => {
          for (const instance of this.targets(spec)) this.apply(spec, instance);
        }),
      );
    }
    // An association runs once on its current targets when it is created.
    for (const instance of this.targets(spec)) this.apply(spec, instance);
  }

  private targets(spec: AssociationSpec): Instance[] {
    return spec.groupNames.flatMap((name) => this.world.instances.inGroup(name)).filter(isManaged);
  }

  private onRegistered(instance: Instance): void {
    for (const spec of this.associations) {
      if (!instance.groupName || !spec.groupNames.includes(instance.groupName)) continue;
      const delay = this.world.rng
        .fork(`association:${spec.id}:${instance.id}`)
        .draw(spec.applyDelaySeconds ?? { min: 5, max: 60 });
      this.world.scheduler.after(delay * 1000, () => this.apply(spec, instance));
    }
  }

  private apply(spec: AssociationSpec, instance: Instance): void {
    if (!isManaged(instance)) return;
    this.runs.push({ associationId: spec.id, instanceId: instance.id, at: this.world.now() });
    this.install(instance, spec.packageName, spec.version ?? "", spec.id);
  }

  /** Runs an install the way an association does: no SendCommand, the same lock on the instance. */
  private install(instance: Instance, packageName: string, version: string, associationId: string): void {
    const command: Command = {
      commandId: this.world.rng
        .fork(`association-run:${associationId}:${instance.id}:${this.invocations.all.length}`)
        .uuid(),
      documentName: DISTRIBUTOR_DOCUMENT,
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
    const invocation = this.runCommand.start(command, instance, "association");
    command.invocations.push(invocation);
  }
}
