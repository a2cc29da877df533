// When the engine calls SSM: poll and send pacing, in poll intervals. An install of the agent takes
// tens of seconds, so its first look waits several intervals; the verification script takes a second
// or two. Instances that become ready close together share one command: installs go out at most
// every three intervals, verifications every two. Fewer, fuller commands are fewer polls: this is
// what keeps a 50-instance batch near one SSM call per instance (measured by `npm run bench`).
import { clock } from "../common/clock.js";
import type { AgentJob } from "./types.js";

const INSTALL_FIRST_POLL_INTERVALS = 4;
const VERIFY_FIRST_POLL_INTERVALS = 0.6;
const INSTALL_SEND_GAP_INTERVALS = 3;
const VERIFY_SEND_GAP_INTERVALS = 2;
/** While nothing changes, waits grow 1.5 times up to this many poll intervals. */
const MAX_BACKOFF_INTERVALS = 2;

export type CommandKind = "install" | "verify";

interface PollSchedule {
  dueAt: number;
  interval: number;
}

/**
 * Waits grow while nothing changes and return to the base interval as soon as something does, so a
 * quiet batch costs few calls and a busy one is followed closely. Registration is polled for the
 * whole batch at once; each command in flight is polled on its own schedule (per command, never per
 * instance).
 */
export class Pacer {
  private registration: PollSchedule;
  private readonly commands = new Map<string, PollSchedule>();
  private readonly lastSent: Record<CommandKind, number> = {
    install: Number.NEGATIVE_INFINITY,
    verify: Number.NEGATIVE_INFINITY,
  };

  constructor(private readonly base: number) {
    this.registration = { dueAt: 0, interval: base };
  }

  registrationDue(): boolean {
    return clock.now() >= this.registration.dueAt;
  }

  registrationPolled(progressed: boolean): void {
    this.registration = this.reschedule(this.registration, progressed);
  }

  /** Whether a send of this kind may go out now. */
  sendDue(kind: CommandKind): boolean {
    return clock.now() - this.lastSent[kind] >= this.sendGap(kind);
  }

  /** A command of this kind went out now: its first look is due after the kind's first-poll wait. */
  sent(commandId: string, kind: CommandKind): void {
    this.track(commandId, kind);
    this.lastSent[kind] = clock.now();
  }

  /** Follows a command this engine did not send (an install already in flight). */
  track(commandId: string, kind: CommandKind): void {
    const first =
      this.base * (kind === "install" ? INSTALL_FIRST_POLL_INTERVALS : VERIFY_FIRST_POLL_INTERVALS);
    this.commands.set(commandId, { dueAt: clock.now() + first, interval: this.base });
  }

  isTracked(commandId: string): boolean {
    return this.commands.has(commandId);
  }

  isDue(commandId: string | undefined, now = clock.now()): boolean {
    return (this.commands.get(commandId ?? "")?.dueAt ?? 0) <= now;
  }

  commandPolled(commandId: string, progressed: boolean): void {
    const poll = this.commands.get(commandId);
    if (poll) this.commands.set(commandId, this.reschedule(poll, progressed));
  }

  /** The earliest moment something is due: a registration poll, a command poll, or a send. */
  nextWake(active: readonly AgentJob[], registering: boolean): number {
    const times: number[] = [];
    if (registering) times.push(this.registration.dueAt);
    for (const job of active) {
      const poll = job.commandId ? this.commands.get(job.commandId) : undefined;
      if (poll) times.push(poll.dueAt);
      if (job.phase === "install")
        times.push(Math.max(this.lastSent.install + this.sendGap("install"), job.retryAt ?? 0));
      if (job.phase === "probe" || job.phase === "verify")
        times.push(this.lastSent.verify + this.sendGap("verify"));
    }
    return times.length > 0 ? Math.min(...times) : clock.now() + this.base;
  }

  private sendGap(kind: CommandKind): number {
    return (kind === "install" ? INSTALL_SEND_GAP_INTERVALS : VERIFY_SEND_GAP_INTERVALS) * this.base;
  }

  private reschedule(poll: PollSchedule, progressed: boolean): PollSchedule {
    const interval = progressed
      ? this.base
      : Math.min(poll.interval * 1.5, this.base * MAX_BACKOFF_INTERVALS);
    return { interval, dueAt: clock.now() + interval * (0.9 + Math.random() * 0.2) };
  }
}
