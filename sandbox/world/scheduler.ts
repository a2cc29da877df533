import { clock } from "../../functions/core/clock.js";

/**
 * Timers of the simulated world, in AWS milliseconds on the shared `clock` (the same clock the
 * handlers measure time with), so a scaled run keeps the handlers' and the world's notion of time in
 * step. Stopping the scheduler cancels every pending timer; work parked on `sleep` then never resumes.
 */
export interface TimerHandle {
  cancel(): void;
}

export class Scheduler {
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
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
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (this.stopped) return;
        this.run(task);
      },
      Math.max(0, clock.toReal(awsMs)),
    );
    this.timers.add(timer);
    return {
      cancel: () => {
        clearTimeout(timer);
        this.timers.delete(timer);
      },
    };
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
    for (const timer of this.timers) clearTimeout(timer);
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
