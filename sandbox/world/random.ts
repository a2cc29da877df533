/**
 * Seeded randomness, so a scenario run with the same seed draws the same fleet, the same delays and the
 * same faults. Every draw that belongs to one thing (an instance, an event, an install) comes from a
 * stream derived from the seed and that thing's key, so the order in which concurrent work happens to
 * run does not change what each thing draws.
 */

/** A duration or count: a fixed value, a uniform range, or a log-normal around a median. */
export type Distribution =
  | number
  | { min: number; max: number }
  | { median: number; p95: number; min?: number; max?: number };

function hashString(text: string): number {
  // FNV-1a, then one round of mixing: good enough to spread related keys over the seed space.
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x7feb352d);
  hash ^= hash >>> 15;
  return hash >>> 0;
}

export class Random {
  private state: number;
  private readonly seedText: string;

  constructor(seed: number | string) {
    this.seedText = String(seed);
    this.state = hashString(this.seedText) || 0x9e3779b9;
  }

  /** A uniform float in [0, 1) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An independent stream for one named thing, reproducible from the seed alone. */
  fork(key: string): Random {
    return new Random(`${this.seedText}/${key}`);
  }

  chance(probability: number): boolean {
    return probability > 0 && this.next() < probability;
  }

  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.next() * (maxInclusive - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError("cannot pick from an empty list");
    return item;
  }

  /** A standard normal draw (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  draw(distribution: Distribution): number {
    if (typeof distribution === "number") return distribution;
    if ("min" in distribution && "max" in distribution && !("median" in distribution)) {
      return distribution.min + this.next() * (distribution.max - distribution.min);
    }
    const { median, p95 } = distribution as { median: number; p95: number };
    // Log-normal: median = e^mu, p95 = e^(mu + 1.645 sigma).
    const sigma = median > 0 && p95 > median ? Math.log(p95 / median) / 1.645 : 0;
    const value = median * Math.exp(sigma * this.normal());
    const bounded = distribution as { min?: number; max?: number };
    return Math.min(bounded.max ?? Number.POSITIVE_INFINITY, Math.max(bounded.min ?? 0, value));
  }

  hex(length: number): string {
    let text = "";
    for (let index = 0; index < length; index++) text += Math.floor(this.next() * 16).toString(16);
    return text;
  }

  /** A version 4 UUID drawn from this stream. */
  uuid(): string {
    const hex = this.hex(32).split("");
    hex[12] = "4";
    hex[16] = ((Number.parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
    const text = hex.join("");
    return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
  }

  alphanumeric(length: number): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let text = "";
    for (let index = 0; index < length; index++) text += alphabet[Math.floor(this.next() * alphabet.length)];
    return text;
  }
}

/** Compares dotted versions numerically: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const left = a.split(".").map((part) => Number.parseInt(part, 10) || 0);
  const right = b.split(".").map((part) => Number.parseInt(part, 10) || 0);
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}
