import { type EventPattern, matchesPattern } from "../../stacks/patterns.js";
import { type Distribution, Random } from "../world/random.js";
import type { World } from "../world/world.js";
import { instanceIdsIn } from "./instance-ids.js";
import type { EventBridgeEvent } from "./shapes.js";

/**
 * EventBridge for the sandbox: every event the world publishes is matched against the rules (built
 * from the very patterns the stacks deploy, `stacks/patterns.ts`) and handed to each matching rule's
 * target. Delivery is best effort, as AWS documents for these sources, so a run can drop, duplicate
 * and delay deliveries; each decision is drawn from the seed and the event's id, so a given seed
 * drops the same events whatever the timing.
 */
export interface DeliveryFaults {
  /** Probability that a matched event never reaches the target. */
  dropProbability?: number;
  /** Probability that the target receives the event a second time. */
  duplicateProbability?: number;
  /** AWS seconds between publication and delivery. */
  delaySeconds?: Distribution;
}

export interface Rule {
  name: string;
  pattern: EventPattern;
  target: (event: EventBridgeEvent) => void | Promise<void>;
}

export interface BusStats {
  published: number;
  matched: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

export class EventBus {
  readonly rules: Rule[] = [];
  readonly stats: BusStats = { published: 0, matched: 0, delivered: 0, dropped: 0, duplicated: 0 };
  /** The same counts per rule (published counts every event the bus saw). */
  readonly ruleStats: Record<string, BusStats> = {};
  private readonly random: Random;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly world: World,
    private readonly faults: DeliveryFaults = {},
  ) {
    this.random = new Random(`bus/${world.options.seed ?? 1}`);
    this.unsubscribe = world.onEvent((event) => this.publish(event));
  }

  addRule(name: string, pattern: EventPattern, target: Rule["target"]): Rule {
    const rule = { name, pattern, target };
    this.rules.push(rule);
    return rule;
  }

  private publish(event: EventBridgeEvent): void {
    this.stats.published++;
    for (const rule of this.rules) {
      const mine = this.ruleStats[rule.name] ?? {
        published: 0,
        matched: 0,
        delivered: 0,
        dropped: 0,
        duplicated: 0,
      };
      this.ruleStats[rule.name] = mine;
      mine.published++;
      if (!matchesPattern(rule.pattern, event)) continue;
      this.stats.matched++;
      mine.matched++;
      const rng = this.random.fork(`${rule.name}:${event.id}`);
      if (rng.chance(this.faults.dropProbability ?? 0)) {
        this.stats.dropped++;
        mine.dropped++;
        this.world.trace.record({
          at: this.world.now(),
          kind: "event.dropped",
          // A launch event's EC2InstanceId, a Run Command event's instance-id, CodeDeploy's instanceId.
          instanceId: instanceIdsIn(event.detail)[0],
          deploymentId: typeof event.detail.deploymentId === "string" ? event.detail.deploymentId : undefined,
          message: `event ${event.id} (${event["detail-type"]}) dropped before ${rule.name}`,
          data: { detailType: event["detail-type"], rule: rule.name },
        });
        continue;
      }
      const copies = rng.chance(this.faults.duplicateProbability ?? 0) ? 2 : 1;
      if (copies === 2) {
        this.stats.duplicated++;
        mine.duplicated++;
      }
      for (let copy = 0; copy < copies; copy++) {
        const delay =
          rng.draw(this.faults.delaySeconds ?? 0) * 1000 + copy * rng.draw({ min: 0.5, max: 30 }) * 1000;
        this.world.scheduler.after(delay, async () => {
          this.stats.delivered++;
          mine.delivered++;
          await rule.target(event);
        });
      }
    }
  }

  close(): void {
    this.unsubscribe();
  }
}
