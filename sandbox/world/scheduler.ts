import { clock } from "../../functions/core/common/clock.js";

/**
 * Timers of the simulated world, in AWS milliseconds on the shared `clock` (the same clock the
 * handlers measure time with), so a scaled run keeps the handlers' and the world's notion of time in
 * step. Stopping the scheduler cancels every pending timer; work parked on `sleep` then never resumes.
 */
export interface TimerHandle {
  cancel(): void;
}

interface PendingTimer {
  /** AWS time (epoch ms) the timer is due. */
  dueAt: number;
  timer?: ReturnType<typeof setTimeout>;
  fire: () => void;
}

export class Scheduler {
  private readonly timers = new Set<PendingTimer>();
  private stopped = false;

  constructor(private readonly onError: (error: unknown) => void) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  now(): number {
    return clock.now();
  }

  /** Runs `task` once `awsMs` AWS milliseconds from now. */
  after(awsMs: number, task: () => void | Promise<void>): TimerHandle {
    if (this.stopped) return { cancel() {} };
    const pending: PendingTimer = {
      dueAt: clock.now() + Math.max(0, awsMs),
      fire: () => {
        this.timers.delete(pending);
        if (this.stopped) return;
        this.run(task);
      },
    };
    pending.timer = setTimeout(pending.fire, Math.max(0, clock.toReal(awsMs)));
    this.timers.add(pending);
    return {
      cancel: () => {
        clearTimeout(pending.timer);
        this.timers.delete(pending);
      },
    };
  }

  /** AWS time the earliest pending timer is due, or undefined when none is pending. */
  nextDueAt(): number | undefined {
    let earliest: number | undefined;
    for (const pending of this.timers) {
      if (earliest === undefined || pending.dueAt < earliest) earliest = pending.dueAt;
    }
    return earliest;
  }

  /**
   * Sets every pending timer again from its due time on the clock as it is now: after the clock's
   * scale changed, or after it was moved forward over a stretch in which nothing was due.
   */
  rearm(): void {
    for (const pending of this.timers) {
      clearTimeout(pending.timer);
      pending.timer = setTimeout(pending.fire, Math.max(0, clock.toReal(pending.dueAt - clock.now())));
    }
  }

  /** Runs `task` every `awsMs` AWS milliseconds, the first time after one period. */
  every(awsMs: number, task: () => void | Promise<void>): TimerHandle {
    let current: TimerHandle | undefined;
    let cancelled = false;
    const tick = () => {
      current = this.after(awsMs, async () => {
        if (cancelled) return;
        tick();
        await task();
      });
    };
    tick();
    return {
      cancel: () => {
        cancelled = true;
        current?.cancel();
      },
    };
  }

  sleep(awsMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.after(awsMs, resolve);
    });
  }

  /** Runs a world task, reporting (never swallowing) what it throws. */
  run(task: () => void | Promise<void>): void {
    try {
      const result = task();
      if (result && typeof result.then === "function") result.then(undefined, this.onError);
    } catch (error) {
      this.onError(error);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const pending of this.timers) clearTimeout(pending.timer);
    this.timers.clear();
  }
}

/** Wakes waiters when something they watch may have changed. */
export class Signal {
  private readonly waiters = new Set<() => void>();

  notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Resolves true as soon as `ready()` holds (checked now and on every notify), or false once
   * `timeoutMs` AWS milliseconds have passed.
   */
  waitFor(scheduler: Scheduler, ready: () => boolean, timeoutMs: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!ready()) return;
        finish(true);
      };
      const timer = scheduler.after(timeoutMs, () => finish(ready()));
      const finish = (value: boolean) => {
        this.waiters.delete(check);
        timer.cancel();
        resolve(value);
      };
      this.waiters.add(check);
    });
  }
}
