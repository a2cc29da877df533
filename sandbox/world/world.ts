import { clock } from "../../functions/core/common/clock.js";
import type { EventBridgeEvent } from "../events/shapes.js";
import { CodeDeployAgents } from "./agent.js";
import { AutoScalingModel } from "./auto-scaling/model.js";
import type { AutoScalingOptions } from "./auto-scaling/records.js";
import { CodeDeployModel } from "./codedeploy/model.js";
import type { CodeDeployOptions } from "./codedeploy/records.js";
import { DynamoDbModel } from "./dynamodb.js";
import { EventPublisher } from "./event-publisher.js";
import {
  type AgentState,
  createInstance,
  type Instance,
  InstanceRegistry,
  type Platform,
} from "./instances.js";
import { Random } from "./random.js";
import { Scheduler } from "./scheduler.js";
import type { WorldServices } from "./services.js";
import { SqsModel } from "./sqs.js";
import { SsmModel } from "./ssm/model.js";
import type { SsmCounters, SsmOptions } from "./ssm/records.js";
import type { AssociationModel } from "./ssm/state-manager.js";
import { Trace } from "./trace.js";
import { WorldEvents } from "./world-events.js";

export interface WorldOptions {
  seed?: number | string;
  region?: string;
  autoScaling?: AutoScalingOptions;
  ssm?: SsmOptions;
  codeDeploy?: CodeDeployOptions;
}

/**
 * The simulated AWS account behind the protocol server: one region, one account, every service model,
 * one seeded random source, one scheduler on the shared clock, one trace of what happened. The models
 * share these services and the world's events and know nothing of each other or of the World; the
 * World builds them, hands CodeDeploy the Auto Scaling calls it makes, and is what scenarios and the
 * server use.
 */
export class World {
  readonly rng: Random;
  readonly region: string;
  readonly trace = new Trace();
  readonly errors: unknown[] = [];
  readonly scheduler: Scheduler;
  readonly counters: SsmCounters;
  readonly autoScaling: AutoScalingModel;
  readonly ssm: SsmModel;
  readonly codeDeploy: CodeDeployModel;
  readonly dynamodb: DynamoDbModel;
  readonly sqs: SqsModel;
  readonly associations: AssociationModel;
  /**
   * What one model does that others react to (launches, registrations, agent starts and stops), for
   * observers of a run: they subscribe after the models, so they see each event after the models did.
   */
  readonly events = new WorldEvents();
  /** Base URL of the protocol server, set when a server serves this world (queue URLs point at it). */
  endpoint = "http://127.0.0.1";
  private readonly registry = new InstanceRegistry();
  private readonly publisher: EventPublisher;

  constructor(readonly options: WorldOptions = {}) {
    this.rng = new Random(options.seed ?? 1);
    this.region = options.region ?? process.env.AWS_REGION ?? "us-east-1";
    this.scheduler = new Scheduler((error) => {
      this.errors.push(error);
      this.trace.record({ at: this.now(), kind: "world.error", message: `world error: ${String(error)}` });
    });
    this.publisher = new EventPublisher(this.trace, () => this.now());
    const services: WorldServices = {
      region: this.region,
      rng: this.rng,
      scheduler: this.scheduler,
      trace: this.trace,
      instances: this.registry,
      events: this.events,
      publisher: this.publisher,
      now: () => this.now(),
    };
    // Listeners run in the order they subscribed: built before SSM, the agents stop on a shutdown
    // (failing CodeDeploy's running event) before SSM fails the instance's invocations.
    const agents = new CodeDeployAgents(services);
    this.autoScaling = new AutoScalingModel(services, options.autoScaling);
    this.ssm = new SsmModel(services, agents, options.ssm);
    this.codeDeploy = new CodeDeployModel(services, agents, this.autoScaling, options.codeDeploy);
    this.dynamodb = new DynamoDbModel(() => this.now());
    this.sqs = new SqsModel(services, () => this.endpoint);
    this.associations = this.ssm.associations;
    this.counters = this.ssm.counters;
  }

  /** Every instance by id, terminated ones included. */
  get instances(): ReadonlyMap<string, Instance> {
    return this.registry.all;
  }

  now(): number {
    return clock.now();
  }

  instance(id: string): Instance {
    return this.registry.get(id);
  }

  addInstance(instance: Instance): void {
    this.registry.add(instance);
  }

  nextOrdinal(key: string): number {
    return this.registry.nextOrdinal(key);
  }

  onEvent(sink: (event: EventBridgeEvent) => void): () => void {
    return this.publisher.subscribe(sink);
  }

  publishEvent(event: EventBridgeEvent): void {
    this.publisher.publish(event);
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
