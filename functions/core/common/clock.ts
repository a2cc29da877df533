// The time the handlers reason in: lifecycle heartbeat windows, poll intervals, deadlines and the
// timestamps AWS returns all live on this clock. In Lambda it is the wall clock. The sandbox runs in
// the same process and compresses it (one AWS second in a few real milliseconds), so it calls
// `setClockScale` before invoking a handler; handler code never calls it.
let scale = 1;
let realOrigin = Date.now();
let awsOrigin = realOrigin;

export const clock = {
  /** Milliseconds since the epoch, in AWS time. */
  now(): number {
    return awsOrigin + (Date.now() - realOrigin) / scale;
  },
  /** Waits `ms` milliseconds of AWS time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms * scale)));
  },
  /** Converts a duration in AWS milliseconds to real milliseconds (for timers the SDK owns). */
  toReal(ms: number): number {
    return ms * scale;
  },
};

/** Real milliseconds per AWS millisecond: 1 is real time, 0.005 runs one AWS second in 5 ms. */
export function setClockScale(realMsPerAwsMs: number, startAt?: number): void {
  if (!(realMsPerAwsMs > 0)) throw new RangeError(`clock scale must be > 0, got ${realMsPerAwsMs}`);
  const current = clock.now();
  realOrigin = Date.now();
  awsOrigin = startAt ?? current;
  scale = realMsPerAwsMs;
}

export function getClockScale(): number {
  return scale;
}
