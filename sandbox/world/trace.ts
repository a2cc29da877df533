/**
 * What happened in the world, in order: the source of the progress lines, the timeline report and
 * the scenario figures. Entries carry AWS-time timestamps.
 */
export interface TraceEntry {
  at: number;
  kind: string;
  instanceId?: string;
  groupName?: string;
  deploymentId?: string;
  message: string;
  data?: Record<string, unknown>;
}

export class Trace {
  readonly entries: TraceEntry[] = [];
  private readonly listeners = new Set<(entry: TraceEntry) => void>();

  record(entry: TraceEntry): void {
    this.entries.push(entry);
    for (const listener of this.listeners) listener(entry);
  }

  subscribe(listener: (entry: TraceEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  count(kind: string): number {
    return this.entries.filter((entry) => entry.kind === kind).length;
  }
}
