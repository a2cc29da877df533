import type { ImageProfile, Instance } from "./instances.js";
import type { LifecycleAction } from "./lifecycle-action.js";
import type { Random } from "./random.js";

// What one service model does that another reacts to, inside the world (EventBridge events are the
// publisher's, event-publisher.ts). The models know these events, not each other: Auto Scaling
// launches and terminates, SSM registers, the CodeDeploy agent starts and stops, and whoever cares
// subscribes. Listeners run at once, in the order they subscribed: what a listener draws from a random
// stream or schedules happens at the same point of every run of a seed.

export interface WorldEventMap {
  /**
   * Auto Scaling launched an instance from `image`. `rng` is the launch's own random stream, which
   * the SSM Agent's registration draws from before the boot delay is drawn: a new listener that drew
   * from it would change every seeded fleet.
   */
  "instance.launched": { instance: Instance; image: ImageProfile; rng: Random };
  /** EC2 started shutting the instance down (lifecycle state Terminating). */
  "instance.terminating": { instance: Instance };
  /** The instance's SSM Agent registered: Run Command and State Manager can reach it. */
  "instance.registered": { instance: Instance };
  /** A launch lifecycle hook started holding an instance (one event per hook, all at once). */
  "lifecycle-action.started": { action: LifecycleAction; instance: Instance };
  /** The CodeDeploy agent on the instance started running. */
  "agent.started": { instance: Instance };
  /**
   * The CodeDeploy agent on the instance stopped: `restart` when an install replaces it (the agent
   * fails the event it ran), `shutdown` when the process or the instance went away.
   */
  "agent.stopped": { instance: Instance; reason: "restart" | "shutdown" };
}

export type WorldEventKind = keyof WorldEventMap;

type Listener<Kind extends WorldEventKind> = (event: WorldEventMap[Kind]) => void;

export class WorldEvents {
  private readonly listeners = new Map<WorldEventKind, Set<Listener<never>>>();

  on<Kind extends WorldEventKind>(kind: Kind, listener: Listener<Kind>): () => void {
    const listeners = this.listeners.get(kind) ?? new Set();
    listeners.add(listener as Listener<never>);
    this.listeners.set(kind, listeners);
    return () => listeners.delete(listener as Listener<never>);
  }

  /** Runs every listener of `kind` now; what a listener throws reaches the emitter, as a direct call's would. */
  emit<Kind extends WorldEventKind>(kind: Kind, event: WorldEventMap[Kind]): void {
    for (const listener of this.listeners.get(kind) ?? []) (listener as Listener<Kind>)(event);
  }
}
