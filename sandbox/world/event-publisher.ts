import type { EventBridgeEvent } from "../events/shapes.js";
import type { Trace } from "./trace.js";

/**
 * Where the emulated services put their EventBridge events: each is traced, then handed to every
 * subscriber (the sandbox's rules, sandbox/events/bus.ts, match and deliver them).
 */
export class EventPublisher {
  private readonly sinks = new Set<(event: EventBridgeEvent) => void>();

  constructor(
    private readonly trace: Trace,
    private readonly now: () => number,
  ) {}

  subscribe(sink: (event: EventBridgeEvent) => void): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  publish(event: EventBridgeEvent): void {
    this.trace.record({
      at: this.now(),
      kind: "event.published",
      message: `event ${event["detail-type"]}`,
      data: { event },
    });
    for (const sink of this.sinks) sink(event);
  }
}
