// The launch path with event completion: each invocation takes every launch it is given one step
// further and returns, instead of polling SSM until the work is done. A launch event registers the
// launch (its record); the instance is looked at every few seconds until it is Online with SSM; one
// install-and-verify command goes to every instance ready in the batch; SSM's command-invocation
// event for that command (through the launch queue) settles the instance and completes its
// lifecycle action. Events are best effort: the launch message stays in the queue until its launch
// is done and comes back when the install is overdue, so a lost event costs time, not the instance.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { CommandSignal } from "../../schemas/command-event.js";
import { type AgentSettings, agentSettings } from "../agent/types.js";
import { expectedVersion } from "../agent/versions.js";
import { clock } from "../common/clock.js";
import { mapLimit } from "../common/concurrency.js";
import type { Lease } from "../common/lease.js";
import { metrics } from "../common/powertools.js";
import type { LaunchConfig } from "../config.js";
import { METRIC } from "../contract.js";
import { spaceReads, takeSettled } from "./command-reads.js";
import { actionOf, actionOfRequest, type InHand, newHand, outcomeOf, requestOf } from "./in-hand.js";
import { installsToSend, readEndedInstalls, recoverInterruptedSends, sendInstalls } from "./installs.js";
import { completeAction, LifecycleCalls, recordHeartbeat } from "./lifecycle.js";
import type { LaunchBook, LaunchRecord } from "./records.js";
import { checkRegistration, checkStillWaiting } from "./registration.js";
import { recordOutcome } from "./report.js";
import { fillLaunchStarts, newestPerInstance, outOfScope, resolveHook } from "./scope.js";
import type { LaunchContext, LaunchOutcome, LaunchRequest } from "./types.js";

const CALLS_IN_FLIGHT = 10;
/** A completion left throttled, or a command event for an instance busy elsewhere, is tried again this soon. */
const RETRY_SOON_SECONDS = 5;

export interface AdvanceInput {
  requests: readonly LaunchRequest[];
  signals: readonly CommandSignal[];
}

export interface AdvanceContext extends LaunchContext {
  lease: Lease;
  book: LaunchBook;
  /** When the invocation ends for good (its Lambda timeout): leases last until then. */
  leaseUntil?: number;
  /** Replayed by hand: installs are looked at every step. */
  byHand?: boolean;
  /** A later step of a replay by hand: a launch it finished meanwhile is reported as it ended. */
  continuing?: boolean;
}

export interface Advanced {
  /** One per instance acted on; PENDING ones come back after `resumeAfterSeconds`. */
  instances: LaunchOutcome[];
  resumeAfterSeconds: Map<string, number>;
  /** Instances another invocation is working on: their command events are retried soon. */
  busy: Set<string>;
  /** Command events that wait for their command's next read: back after these seconds. */
  deferred: Map<string, number>;
}

export async function advanceLaunches(
  input: AdvanceInput,
  config: LaunchConfig,
  context: AdvanceContext,
): Promise<Advanced> {
  return new LaunchStepper(config, context).run(input);
}

class LaunchStepper {
  private readonly hand = new Map<string, InHand>();
  private readonly outcomes = new Map<string, LaunchOutcome>();
  private readonly resumeAfter = new Map<string, number>();
  private readonly busy = new Set<string>();
  private readonly deferred = new Map<string, number>();
  private readonly lifecycle: LifecycleCalls;
  private readonly settings: AgentSettings;
  private expected: string | undefined;

  constructor(
    private readonly config: LaunchConfig,
    private readonly context: AdvanceContext,
  ) {
    this.lifecycle = new LifecycleCalls(1, context.deadline);
    this.settings = agentSettings(config);
  }

  async run(input: AdvanceInput): Promise<Advanced> {
    const requests = await this.inScope(input.requests);
    const ids = [...new Set([...requests.keys(), ...input.signals.map((signal) => signal.instanceId)])];
    const known = ids.length > 0 ? await this.context.book.read(ids) : new Map<string, LaunchRecord>();
    await this.takeRequests(requests, known);
    this.takeSignals(input.signals, known);
    await this.lease();

    const now = clock.now();
    const all = [...this.hand.values()];
    if (this.context.byHand) for (const item of all) item.readNow = true;
    else
      for (const [id, seconds] of await spaceReads(all, now, this.context.book, overdueMs(this.config)))
        this.deferred.set(id, seconds);
    await checkStillWaiting(all, now, (item, reason) => this.close(item, reason));
    await recoverInterruptedSends(all, this.settings.installDocument);
    await checkRegistration(all, now, this.config.REGISTRATION_TIMEOUT_SECONDS * 1000);
    const { others, read } = await readEndedInstalls(all, this.settings, overdueMs(this.config), () =>
      this.expectedVersion(),
    );
    if (read.length > 0) await this.context.book.noteRead(read, now);
    // A command event whose read failed (throttled) comes back when the read is tried again.
    for (const item of all.filter(({ readNow, heldUntil }) => readNow && heldUntil !== undefined))
      this.deferred.set(
        item.record.instanceId,
        Math.max(1, Math.ceil(((item.heldUntil ?? now) - now) / 1000)),
      );
    if (others.size > 0) {
      const taken = await takeSettled(others, this.context, this.settings, () => this.expectedVersion());
      for (const item of taken) this.hand.set(item.record.instanceId, item);
      all.push(...taken);
    }
    const toSend = installsToSend(all, clock.now());
    if (toSend.length > 0) {
      await this.context.book.write(toSend.map((item) => item.record));
      await sendInstalls(toSend, this.settings, await this.expectedVersion(), this.context.correlationId);
    }
    await mapLimit(
      all.filter((item) => item.finish),
      CALLS_IN_FLIGHT,
      (item) => this.complete(item),
    );
    await this.heartbeatLongWaits();
    for (const item of this.hand.values()) this.report(item);

    await this.context.book.write([...this.hand.values()].map((item) => item.record));
    await mapLimit([...this.hand.keys()], CALLS_IN_FLIGHT, (instanceId) =>
      this.context.lease.release(`agent#${instanceId}`, this.context.correlationId),
    );
    const instances = [...this.outcomes.values()];
    for (const outcome of instances) recordOutcome(outcome);
    return { instances, resumeAfterSeconds: this.resumeAfter, busy: this.busy, deferred: this.deferred };
  }

  /** In-scope requests, one per instance, each with its hook resolved. */
  private async inScope(requests: readonly LaunchRequest[]): Promise<Map<string, LaunchRequest>> {
    const kept = requests.filter((request) => {
      const skip = outOfScope(request, this.config);
      if (skip) this.outcomes.set(request.instanceId, outcomeOf(request, "SKIPPED", skip));
      return !skip;
    });
    const work = newestPerInstance(kept);
    for (const [instanceId, request] of work) {
      const resolution = await resolveHook(request, this.config);
      if ("skip" in resolution) {
        this.outcomes.set(instanceId, outcomeOf(request, "SKIPPED", resolution.skip));
        work.delete(instanceId);
        continue;
      }
      request.hook = resolution.hook;
      heartbeatTimeouts.set(request.group, resolution.heartbeatTimeoutSeconds);
    }
    return work;
  }

  /**
   * A request continues its launch's record, or starts a new one. An event's token tells its launch
   * apart (a warm-pool instance launches twice). A sweep or a replay carries no token: it is about the
   * record in progress, or, when that is done, about an action it confirms is still open (our
   * lifecycle action, not CodeDeploy's hook that may hold the instance after our CONTINUE).
   */
  private async takeRequests(
    requests: Map<string, LaunchRequest>,
    known: Map<string, LaunchRecord>,
  ): Promise<void> {
    const toConfirm: LaunchRequest[] = [];
    for (const [instanceId, request] of requests) {
      const record = known.get(instanceId);
      const sameLaunch = record && (!request.token || !record.token || request.token === record.token);
      if (record && sameLaunch && record.phase !== "done") {
        record.token ??= request.token;
        this.hand.set(instanceId, newHand(record));
      } else if (record && sameLaunch && (request.source === "event" || this.context.continuing)) {
        // A duplicate or a redelivery of a launch already done: nothing to do, nothing to report
        // (a replay by hand that saw it through is told how it ended).
        if (this.context.continuing) this.hand.set(instanceId, newHand(record));
      } else if (request.source === "event") {
        this.hand.set(instanceId, newHand(this.newRecord(request)));
      } else {
        toConfirm.push(request);
      }
    }
    if (toConfirm.length === 0) return;
    if (this.config.DRY_RUN) return;
    await fillLaunchStarts(toConfirm);
    const open = await mapLimit(toConfirm, CALLS_IN_FLIGHT, (request) =>
      this.lifecycle.retrying(() => recordHeartbeat(actionOfRequest(request))),
    );
    for (const [index, request] of toConfirm.entries()) {
      if (open[index] === false) {
        this.outcomes.set(
          request.instanceId,
          outcomeOf(
            request,
            "ALREADY_COMPLETED",
            "our lifecycle action is not open (another hook, such as CodeDeploy's launch hook, holds the instance); left alone",
          ),
        );
        continue;
      }
      const record = this.newRecord(request);
      if (open[index] === true) record.lastBeatAt = clock.now();
      this.hand.set(request.instanceId, newHand(record));
    }
  }

  /** A command event settles the install it names; any other (stale, a duplicate) is ignored. */
  private takeSignals(signals: readonly CommandSignal[], known: Map<string, LaunchRecord>): void {
    for (const signal of signals) {
      const inHand = this.hand.get(signal.instanceId);
      const record = inHand?.record ?? known.get(signal.instanceId);
      if (record?.phase !== "installing" || record.commandId !== signal.commandId) continue;
      const item = inHand ?? newHand(record);
      item.readNow = true;
      this.hand.set(signal.instanceId, item);
    }
  }

  private newRecord(request: LaunchRequest): LaunchRecord {
    return {
      instanceId: request.instanceId,
      group: request.group,
      hook: request.hook ?? "",
      ...(request.token ? { token: request.token } : {}),
      ...(request.origin ? { origin: request.origin } : {}),
      startedAt: request.startedAt ?? clock.now(),
      phase: "registering",
      attempts: 0,
      installCommandIds: [],
      heartbeatTimeoutSeconds: heartbeatTimeouts.get(request.group) ?? 3600,
      reason: "waiting for SSM registration",
    };
  }

  /** Two invocations never work on one instance at once (a command event and its launch message). */
  private async lease(): Promise<void> {
    const items = [...this.hand.values()];
    // Until the invocation's hard end, not its deadline: work that overruns must not meet another's.
    const until = this.context.leaseUntil ?? this.context.deadline;
    const leased = await mapLimit(items, CALLS_IN_FLIGHT, (item) =>
      this.context.lease.acquire(`agent#${item.record.instanceId}`, this.context.correlationId, until),
    );
    // The records were read before the leases: another invocation may have moved a launch on while
    // this one waited (sent its install, completed it). Its newer record wins.
    const held = items.filter((_, index) => leased[index]);
    const fresh =
      held.length > 0 ? await this.context.book.read(held.map(({ record }) => record.instanceId)) : new Map();
    for (const item of held) {
      const record = fresh.get(item.record.instanceId);
      if (!record || (record.updatedAt ?? 0) <= (item.record.updatedAt ?? 0)) continue;
      // Only a record of this same launch (a warm-pool instance launches twice).
      const sameLaunch =
        record.startedAt === item.record.startedAt || (!!record.token && record.token === item.record.token);
      if (!sameLaunch) continue;
      const sameCommand = record.commandId === item.record.commandId;
      item.record = record;
      if (!sameCommand || record.phase !== "installing") item.readNow = false;
    }
    for (const [index, item] of items.entries()) {
      if (leased[index]) continue;
      this.hand.delete(item.record.instanceId);
      this.busy.add(item.record.instanceId);
      this.outcomes.set(item.record.instanceId, {
        ...outcomeOf(requestOf(item.record), "PENDING", "another invocation is working on this instance"),
        busyElsewhere: true,
      });
    }
  }

  private async expectedVersion(): Promise<string> {
    this.expected ??= await expectedVersion(this.settings);
    return this.expected;
  }

  /** The lifecycle action ended without us (terminated, completed by someone else): done. */
  private close(item: InHand, reason: string): void {
    item.record.phase = "done";
    item.record.outcome = "ALREADY_COMPLETED";
    item.record.reason = reason;
    item.finish = undefined;
  }

  private async complete(item: InHand): Promise<void> {
    const finish = item.finish;
    if (!finish) return;
    const result = finish.ok ? "CONTINUE" : this.config.FAILURE_RESULT;
    const completion = await this.lifecycle.retrying(() => completeAction(actionOf(item.record), result));
    if (completion === "throttled") {
      item.record.reason = `${finish.reason}; completing the lifecycle action (${result}) stayed throttled, tried again shortly`;
      item.finish = undefined;
      this.resumeAfter.set(item.record.instanceId, RETRY_SOON_SECONDS);
      return;
    }
    item.record.phase = "done";
    if (completion === "ALREADY_COMPLETED") {
      item.record.outcome = "ALREADY_COMPLETED";
      item.record.reason = `${finish.reason}; the lifecycle action had already ended`;
    } else {
      item.record.outcome = result;
      item.record.reason = finish.ok
        ? finish.reason
        : `${finish.reason}; completed ${result} (FAILURE_RESULT)`;
    }
  }

  /** A launch that waits long (slow registration, a deployment on the instance) keeps its action alive. */
  private async heartbeatLongWaits(): Promise<void> {
    if (this.config.DRY_RUN) return;
    const now = clock.now();
    const due = [...this.hand.values()].filter(
      ({ record }) =>
        record.phase !== "done" &&
        now - (record.lastBeatAt ?? record.startedAt) >= (record.heartbeatTimeoutSeconds * 1000) / 2,
    );
    const alive = await mapLimit(due, CALLS_IN_FLIGHT, (item) =>
      this.lifecycle.once(() => recordHeartbeat(actionOf(item.record))),
    );
    for (const [index, item] of due.entries()) {
      if (alive[index] === true) {
        item.record.lastBeatAt = now;
        metrics.addMetric(METRIC.heartbeats, MetricUnit.Count, 1);
      } else if (alive[index] === false) {
        this.close(item, "the lifecycle action ended while the agent was being set up");
      }
    }
  }

  /** The outcome of an instance in hand, and when a pending one is looked at next. */
  private report(item: InHand): void {
    const { record } = item;
    const outcome = record.phase === "done" ? (record.outcome ?? "ALREADY_COMPLETED") : "PENDING";
    this.outcomes.set(record.instanceId, {
      ...outcomeOf(requestOf(record), outcome, record.reason),
      ...(record.agentVersion ? { agentVersion: record.agentVersion } : {}),
      ...(record.installCommandIds.length > 0 ? { installCommandIds: record.installCommandIds } : {}),
      ...(record.bakedAgent ? { bakedAgent: record.bakedAgent } : {}),
    });
    if (outcome !== "PENDING" || this.resumeAfter.has(record.instanceId)) return;
    const now = clock.now();
    // Registration is looked at on a shared beat (every registrationPollSeconds of the clock), so the
    // messages of many invocations come back together and share one batch: one look, one command.
    const beat = this.config.REGISTRATION_POLL_SECONDS * 1000;
    const seconds =
      record.phase === "installing"
        ? ((item.heldUntil ?? (record.commandSentAt ?? now) + overdueMs(this.config)) - now) / 1000
        : record.phase === "waiting"
          ? ((record.retryAt ?? now) - now) / 1000
          : ((Math.floor(now / beat) + 1) * beat - now) / 1000;
    this.resumeAfter.set(record.instanceId, Math.min(900, Math.max(1, Math.ceil(seconds))));
  }
}

/** Heartbeat timeouts of the hooks seen, by group (the hook is the stage's own, one per group). */
const heartbeatTimeouts = new Map<string, number>();

function overdueMs(config: LaunchConfig): number {
  return config.COMMAND_OVERDUE_SECONDS * 1000;
}
