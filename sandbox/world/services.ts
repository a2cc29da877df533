import type { EventPublisher } from "./event-publisher.js";
import type { InstanceRegistry } from "./instances.js";
import type { Random } from "./random.js";
import type { Scheduler } from "./scheduler.js";
import type { Trace } from "./trace.js";
import type { WorldEvents } from "./world-events.js";

/**
 * What the service models of the world share, and all they see of the world: one region, one seeded
 * random source, one scheduler and one clock, one trace, the instances, the world's internal events
 * and the EventBridge publisher. `World` builds them and hands the same ones to every model.
 */
export interface WorldServices {
  readonly region: string;
  readonly rng: Random;
  readonly scheduler: Scheduler;
  readonly trace: Trace;
  readonly instances: InstanceRegistry;
  readonly events: WorldEvents;
  readonly publisher: EventPublisher;
  /** AWS time (epoch ms) on the shared clock. */
  now(): number;
}
