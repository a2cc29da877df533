import type { Instance } from "./instances.js";
import type { Distribution } from "./random.js";
import type { TimerHandle } from "./scheduler.js";
import type { World } from "./world.js";

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

  constructor(private readonly world: World) {
    world.ssm.onRegistered((instance) => this.onRegistered(instance));
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
    return spec.groupNames
      .flatMap((name) => [...(this.world.autoScaling.groups.get(name)?.instances ?? [])])
      .map((id) => this.world.instance(id))
      .filter((instance) => this.world.ssm.isManaged(instance));
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
    if (!this.world.ssm.isManaged(instance)) return;
    this.runs.push({ associationId: spec.id, instanceId: instance.id, at: this.world.now() });
    this.world.ssm.installFromAssociation(instance, spec.packageName, spec.version ?? "", spec.id);
  }
}
