import { clock } from "../../functions/core/common/clock.js";
import { type EventBridgeEvent, launchLifecycleEvent } from "../events/shapes.js";
import { AssociationModel } from "./association.js";
import { AutoScalingModel, type AutoScalingOptions } from "./auto-scaling.js";
import { CodeDeployModel, type CodeDeployOptions } from "./codedeploy.js";
import { DynamoDbModel } from "./dynamodb.js";
import { type AgentState, createInstance, type Instance, type Platform } from "./instances.js";
import { Random } from "./random.js";
import { Scheduler } from "./scheduler.js";
import { SqsModel } from "./sqs.js";
import { SsmModel, type SsmOptions } from "./ssm.js";
import { Trace } from "./trace.js";

export interface WorldOptions {
  seed?: number | string;
  region?: string;
  autoScaling?: AutoScalingOptions;
  ssm?: SsmOptions;
  codeDeploy?: CodeDeployOptions;
}

export interface WorldCounters {
  /** Installs sent to an instance while another install was in flight there. */
  duplicateInstalls: number;
  installsSent: number;
  verifications: number;
}

/**
 * The simulated AWS account behind the protocol server: one region, one account, every service model,
 * one seeded random source, one scheduler on the shared clock, one trace of what happened.
 */
export class World {
  readonly rng: Random;
  readonly region: string;
  readonly trace = new Trace();
  readonly errors: unknown[] = [];
  readonly scheduler: Scheduler;
  readonly instances = new Map<string, Instance>();
  readonly counters: WorldCounters = { duplicateInstalls: 0, installsSent: 0, verifications: 0 };
  readonly autoScaling: AutoScalingModel;
  readonly ssm: SsmModel;
  readonly codeDeploy: CodeDeployModel;
  readonly dynamodb: DynamoDbModel;
  readonly sqs: SqsModel;
  readonly associations: AssociationModel;
  /** Base URL of the protocol server, set when a server serves this world (queue URLs point at it). */
  endpoint = "http://127.0.0.1";
  private readonly ordinals = new Map<string, number>();
  private readonly eventSinks = new Set<(event: EventBridgeEvent) => void>();

  constructor(readonly options: WorldOptions = {}) {
    this.rng = new Random(options.seed ?? 1);
    this.region = options.region ?? process.env.AWS_REGION ?? "us-east-1";
    this.scheduler = new Scheduler((error) => {
      this.errors.push(error);
      this.trace.record({ at: this.now(), kind: "world.error", message: `world error: ${String(error)}` });
    });
    this.autoScaling = new AutoScalingModel(this, options.autoScaling);
    this.ssm = new SsmModel(this, options.ssm);
    this.codeDeploy = new CodeDeployModel(this, options.codeDeploy);
    this.dynamodb = new DynamoDbModel(() => this.now());
    this.sqs = new SqsModel(this);
    this.associations = new AssociationModel(this);
    this.autoScaling.onLaunchAction((action, instance) => {
      const group = this.autoScaling.group(action.groupName);
      const hook = group.hooks.get(action.hookName);
      this.publishEvent(
        launchLifecycleEvent({
          id: this.rng.fork(`event:${action.token}`).uuid(),
          at: this.now(),
          region: this.region,
          groupArn: group.arn,
          token: action.token,
          groupName: group.name,
          hookName: action.hookName,
          instanceId: instance.id,
          notificationMetadata: hook?.notificationMetadata,
          origin: "EC2",
          destination: "AutoScalingGroup",
        }),
      );
    });
  }

  now(): number {
    return clock.now();
  }

  instance(id: string): Instance {
    const instance = this.instances.get(id);
    if (!instance) throw new RangeError(`no instance ${id} in the sandbox world`);
    return instance;
  }

  addInstance(instance: Instance): void {
    this.instances.set(instance.id, instance);
  }

  nextOrdinal(key: string): number {
    const next = (this.ordinals.get(key) ?? 0) + 1;
    this.ordinals.set(key, next);
    return next;
  }

  onEvent(sink: (event: EventBridgeEvent) => void): () => void {
    this.eventSinks.add(sink);
    return () => this.eventSinks.delete(sink);
  }

  publishEvent(event: EventBridgeEvent): void {
    this.trace.record({
      at: this.now(),
      kind: "event.published",
      message: `event ${event["detail-type"]}`,
      data: { event },
    });
    for (const sink of this.eventSinks) sink(event);
  }

  /**
   * An instance that was already running before the story starts: in service in `groupName`,
   * registered with SSM, with the given agent.
   */
  addRunningInstance(groupName: string, fields: { platform?: Platform; agent: AgentState }): Instance {
    const group = this.autoScaling.group(groupName);
    const ordinal = this.nextOrdinal(`running:${groupName}`);
    const rng = this.rng.fork(`running:${groupName}:${ordinal}`);
    const launchedAt = this.now() - 30 * 86_400_000;
    const instance = createInstance({
      id: `i-${rng.hex(17)}`,
      groupName,
      platform: fields.platform ?? "Linux",
      imageId: group.image.imageId,
      availabilityZone: rng.pick(group.availabilityZones),
      launchedAt,
      lifecycleState: "InService",
      agent: { ...fields.agent },
    });
    instance.ssm.registersAt = launchedAt + 60_000;
    instance.ssm.registeredAt = launchedAt + 60_000;
    instance.milestones = {
      launched: launchedAt,
      ssmOnline: launchedAt + 60_000,
      inService: launchedAt + 120_000,
    };
    this.addInstance(instance);
    this.autoScaling.adoptInstance(groupName, instance);
    return instance;
  }

  stop(): void {
    this.scheduler.stop();
  }
}
