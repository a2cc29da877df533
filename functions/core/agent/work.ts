// One step of agent work over a batch of jobs, for the launch and the failure path alike: the SSM calls
// each phase needs, batched (one DescribeInstanceInformation for every instance registering, one
// SendCommand per 50 ready, one ListCommandInvocations per command due), answers applied with job.ts's
// transitions; what differs (lifecycle actions, where jobs are kept) comes in through the context.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import { clock } from "../common/clock.js";
import { chunk, mapLimit } from "../common/concurrency.js";
import { awsErrorName, errorMessage, isTransient } from "../common/errors.js";
import { logger, metrics } from "../common/powertools.js";
import type { AgentConfig } from "../config.js";
import { MAX_INSTANCE_IDS_PER_COMMAND, METRIC, type MetricName } from "../contract.js";
import {
  type AgentJob,
  type Cadence,
  INVOCATION_VISIBILITY_GRACE_MS,
  nextInstallLook,
  nextRegistrationLook,
  onDeploymentChecked,
  onInstallEnded,
  onNeverListed,
  onRegistration,
  onSendFailed,
  onSending,
  onSendLookedUp,
  onSent,
  onWaitOver,
} from "./job.js";
import { DocumentChangedError } from "./settings.js";
import {
  COMMAND_DELIVERY_TIMEOUT_SECONDS,
  describeOnline,
  findInstallSince,
  IN_FLIGHT_STATUSES,
  instancesRefused,
  listInvocations,
  sendInstall,
} from "./ssm-commands.js";
import { judgeInstall } from "./verdicts.js";

/** A command read in the last few seconds is not read again for an event: the next read serves it. */
const READ_GAP_MS = 5_000;
const CALLS_IN_FLIGHT = 5;
/** A send whose outcome is unknown is looked up on the instance this often, until it shows or its grace ends. */
const SEND_LOOKUP_GAP_MS = 10_000;
/** A cut-off invocation may have sent its install just before it ended: looked up from a minute earlier. */
const SEND_LOOKBACK_MS = 60_000;

/** When an install command was last read, and how many overdue looks it has had. */
export interface CommandMark {
  readAt: number;
  lookups: number;
  /** The stored mark's version, as read: a claim succeeds only while it is unchanged. */
  version?: number;
}

export interface WorkContext<J extends AgentJob> {
  config: AgentConfig;
  /** The version the agent must run at, or newer ("" accepts any). */
  expected: string;
  cadence: Cadence;
  now: () => number;
  /** When this invocation ends for good: a step it takes is its own until then. */
  heldUntil: number;
  correlationId: string;
  /** Jobs whose install's end SSM signalled (an event): read now. */
  signalled: ReadonlySet<string>;
  /** Stores the job if it is still at the version read; false when it changed elsewhere (drop it). */
  take: (job: J) => Promise<boolean>;
  /** When the job began waiting for registration, and by when it must be Online with SSM. */
  registration: (job: J) => { since: number; deadline: number };
  /** Marks shared by every invocation: at most one read of a command per interval. */
  marks: (commandIds: readonly string[]) => Promise<Map<string, CommandMark>>;
  claimRead: (commandId: string, seen: CommandMark | undefined, next: CommandMark) => Promise<boolean>;
  /** Before installs go out: the jobs whose work is still wanted (the launch's action still open). */
  stillWanted?: (jobs: J[]) => Promise<J[]>;
  /** CodeDeploy: the deployment in flight on each of these instances, if any. */
  deploymentsInFlight?: (jobs: J[]) => Promise<Map<string, string>>;
  /**
   * One read shows every instance of a command: of these instances not in hand, the jobs still
   * installing `commandId`, settled by this read too, so their events, still on the way, find them done.
   */
  othersWaiting?: (commandId: string, instanceIds: string[]) => Promise<J[]>;
  /** Counts a settled install's metrics (at once when absent: the jobs are kept in memory). */
  count?: (job: J, metrics: readonly MetricName[]) => void;
}

export interface Advanced<J> {
  /** When each unfinished job is next due (AWS-time ms). */
  due: Map<string, number>;
  /** Jobs whose record another invocation changed meanwhile: this one acts on nothing more of them. */
  dropped: Set<J>;
  /** Signalled jobs whose command was not read in this step (read a moment ago, or being read elsewhere). */
  unread: Set<string>;
}

/** Takes every job one step further. */
export async function advanceWork<J extends AgentJob>(
  jobs: readonly J[],
  context: WorkContext<J>,
): Promise<Advanced<J>> {
  const due = new Map<string, number>();
  const unread = new Set<string>();
  const live = () => jobs.filter((job) => !dropped.has(job));
  const dropped = new Set<J>();
  const inPhase = (phase: AgentJob["phase"]) => live().filter((job) => job.phase === phase);

  const registering = inPhase("registering");
  const online = await describeOnline(registering.map((job) => job.instanceId));
  for (const job of registering)
    onRegistration(job, online.get(job.instanceId), context.now(), context.registration(job).deadline);
  await readInstalls(inPhase("installing"), context, due, unread);
  const stale = inPhase("sending").filter((job) => (job.heldUntil ?? 0) <= context.now());
  await mapLimit(stale, CALLS_IN_FLIGHT, async (job) => {
    const since = (job.sendingSince ?? context.now()) - SEND_LOOKBACK_MS;
    const found = await findInstallSince(context.config, job.instanceId, since, context.now);
    onSendLookedUp(job, found, context.now());
  });
  for (const job of inPhase("waiting")) onWaitOver(job, context.now());
  const toAsk = inPhase("waiting").filter((job) => job.restartCheck && (job.retryAt ?? 0) <= context.now());
  // No one to ask (the failure path guards the whole group itself): restart as before.
  const inFlight =
    (toAsk.length > 0 && (await context.deploymentsInFlight?.(toAsk))) || new Map<string, string>();
  for (const job of toAsk) onDeploymentChecked(job, inFlight.get(job.instanceId), context.now());
  const wanted = context.stillWanted ? await context.stillWanted(inPhase("ready")) : inPhase("ready");
  await sendInstalls(wanted, context, dropped);

  for (const job of live()) {
    if (job.phase === "registering" && !due.has(job.instanceId))
      due.set(
        job.instanceId,
        nextRegistrationLook(context.registration(job).since, context.now(), context.cadence),
      );
    else if (job.phase === "waiting") due.set(job.instanceId, job.retryAt ?? context.now());
    // Held by another invocation: back when its hold ends; stale: looked up on the instance again
    // in a few seconds (a command just sent may not be listed yet).
    else if (job.phase === "sending")
      due.set(job.instanceId, Math.max(job.heldUntil ?? 0, context.now() + SEND_LOOKUP_GAP_MS));
    else if (job.phase === "installing" && !due.has(job.instanceId))
      due.set(job.instanceId, nextInstallLook(job.sentAt ?? context.now(), 0, undefined, context.cadence));
  }
  return { due, dropped, unread };
}

/**
 * One read per command that is due: an install whose end was signalled (unless the command was read
 * in the last READ_GAP_MS), or one overdue by its schedule. The read is claimed in the shared mark
 * first, so however many invocations hold instances of one command, it is read once per interval.
 */
async function readInstalls<J extends AgentJob>(
  jobs: J[],
  context: WorkContext<J>,
  due: Map<string, number>,
  unread: Set<string>,
) {
  if (jobs.length === 0) return;
  const byCommand = new Map<string, J[]>();
  for (const job of jobs)
    byCommand.set(job.commandId ?? "", [...(byCommand.get(job.commandId ?? "") ?? []), job]);
  const marks = await context.marks([...byCommand.keys()]);
  await mapLimit([...byCommand], CALLS_IN_FLIGHT, async ([commandId, ofCommand]) => {
    const now = Math.round(context.now());
    const mark = marks.get(commandId);
    const sentAt = Math.min(...ofCommand.map((job) => job.sentAt ?? now));
    const signalled = ofCommand.some((job) => context.signalled.has(job.instanceId));
    const overdueAt = nextInstallLook(sentAt, mark?.lookups ?? 0, mark?.readAt, context.cadence);
    const dueAt = signalled ? Math.min(overdueAt, (mark?.readAt ?? 0) + READ_GAP_MS) : overdueAt;
    const later = (at: number) => {
      for (const job of ofCommand) {
        due.set(job.instanceId, at);
        if (context.signalled.has(job.instanceId)) unread.add(job.instanceId);
      }
    };
    if (now < dueAt) return later(dueAt);
    const next = { readAt: now, lookups: signalled ? (mark?.lookups ?? 0) : (mark?.lookups ?? 0) + 1 };
    // Another invocation reads it right now: its settlement (or the next look) serves these too.
    if (!(await context.claimRead(commandId, mark, next))) return later(now + READ_GAP_MS);
    let invocations: Map<string, CommandInvocation>;
    try {
      invocations = await listInvocations(commandId);
    } catch (error) {
      if (!isTransient(error)) throw error;
      logger.warn("ListCommandInvocations failed transiently; read again shortly", {
        commandId,
        error: errorMessage(error),
      });
      return later(now + READ_GAP_MS);
    }
    const ended = new Map(
      [...invocations].filter(([, invocation]) => !IN_FLIGHT_STATUSES.has(invocation.Status ?? "Pending")),
    );
    const inHand = new Set(ofCommand.map((job) => job.instanceId));
    const others = [...ended.keys()].filter((id) => !inHand.has(id));
    const waiting = others.length > 0 ? ((await context.othersWaiting?.(commandId, others)) ?? []) : [];
    for (const job of [...ofCommand, ...waiting]) {
      const invocation = ended.get(job.instanceId);
      if (invocation) settle(job, invocation, context);
      else if (
        !invocations.has(job.instanceId) &&
        now - (job.sentAt ?? now) > INVOCATION_VISIBILITY_GRACE_MS + COMMAND_DELIVERY_TIMEOUT_SECONDS * 1000
      ) {
        onNeverListed(job, context.now(), context.config.INSTALL_ATTEMPTS);
      } else {
        due.set(job.instanceId, nextInstallLook(sentAt, next.lookups, now, context.cadence));
      }
    }
  });
}

/**
 * The one rule of an ended install, whoever holds its job: judged against the version expected now,
 * which a job sent without one ("": the published version could not be read then) takes on, so the
 * report and the baked-agent check compare with the version the verdict used.
 */
function settle<J extends AgentJob>(job: J, invocation: CommandInvocation, context: WorkContext<J>) {
  const judgement = judgeInstall(invocation, context.config, context.expected);
  onInstallEnded(job, judgement, context.now(), context.config.INSTALL_ATTEMPTS);
  job.expectedVersion ||= context.expected;
  if (context.count) context.count(job, judgement.metrics);
  else for (const metric of judgement.metrics) metrics.addMetric(metric, MetricUnit.Count, 1);
}

/**
 * One command per 50 ready instances (and per kind: may an older agent be restarted?). Each job's
 * step is taken (stored as `sending`) before its command goes out; a job whose record changed
 * elsewhere meanwhile is dropped, so no two invocations send one instance two installs.
 */
async function sendInstalls<J extends AgentJob>(jobs: J[], context: WorkContext<J>, dropped: Set<J>) {
  if (jobs.length === 0) return;
  const taken: J[] = [];
  await mapLimit(jobs, CALLS_IN_FLIGHT * 2, async (job) => {
    onSending(job, context.now(), context.heldUntil);
    if (await context.take(job)) taken.push(job);
    else dropped.add(job);
  });
  for (const allow of [false, true]) {
    const group = taken.filter((job) => Boolean(job.restartAllowed) === allow);
    for (const batch of chunk(group, MAX_INSTANCE_IDS_PER_COMMAND)) await send(batch, allow, context);
  }
}

async function send<J extends AgentJob>(jobs: J[], allowRestart: boolean, context: WorkContext<J>) {
  const ids = jobs.map((job) => job.instanceId);
  try {
    const commandId = await sendInstall(context.config, ids, {
      comment: `agentfix install ${context.correlationId}`.slice(0, 100),
      expectedVersion: context.expected,
      allowRestart,
    });
    metrics.addMetric(METRIC.installsSent, MetricUnit.Count, jobs.length);
    for (const job of jobs) {
      job.expectedVersion = context.expected;
      onSent(job, commandId, context.now(), `installing ${context.config.AGENT_PACKAGE}`);
    }
  } catch (error) {
    if (isTransient(error)) {
      logger.warn("SendCommand failed transiently; the install is looked up before it is sent again", {
        instanceIds: ids,
        error: errorMessage(error),
      });
      for (const job of jobs) onSendFailed(job, "unknown", context.now());
      return;
    }
    // Instances SSM does not take commands for yet wait for registration again. Any other refusal
    // (a document changed outside the stack, access denied outside the groups the role may reach)
    // stays with the instances it names, or with the whole batch when it names none; the rest go on.
    const message = errorMessage(error);
    const refused = instancesRefused(error, ids);
    const named = refused ?? ids.filter((id) => message.includes(id));
    const failed = named.length > 0 ? named : ids;
    const reason =
      error instanceof DocumentChangedError
        ? message
        : `SSM refused the install: ${awsErrorName(error) || "Error"}: ${message}`;
    if (!refused) logger.error(reason, { instanceIds: failed });
    for (const job of jobs.filter((candidate) => failed.includes(candidate.instanceId)))
      onSendFailed(job, refused ? "refused" : { error: reason }, context.now());
    const rest = jobs.filter((job) => job.phase === "sending");
    if (rest.length > 0 && rest.length < jobs.length) await send(rest, allowRestart, context);
  }
}

/**
 * Run-until-done over jobs kept in memory (the failure path's upgrade): steps until every job has
 * ended or the deadline comes; `beforeRound` names jobs to stop (a deployment started meanwhile).
 */
export async function runWork<J extends AgentJob>(
  jobs: readonly J[],
  context: Omit<WorkContext<J>, "signalled" | "take" | "marks" | "claimRead">,
  until: { deadline: number; beforeRound?: (pending: J[]) => Promise<readonly J[]> },
): Promise<void> {
  const marks = new Map<string, CommandMark>();
  const base = context.cadence.followMs ?? context.config.POLL_INTERVAL_MS;
  const active = () => jobs.filter((job) => job.phase !== "finishing" && job.phase !== "done");
  while (active().length > 0 && context.now() < until.deadline) {
    for (const job of (await until.beforeRound?.(active())) ?? []) job.phase = "done";
    if (active().length === 0) break;
    const { due } = await advanceWork(active(), {
      ...context,
      signalled: new Set(),
      take: async () => true,
      marks: async (ids) =>
        new Map(ids.flatMap((id) => (marks.has(id) ? [[id, marks.get(id) as CommandMark]] : []))),
      claimRead: async (id, _seen, next) => {
        marks.set(id, next);
        return true;
      },
    });
    const pending = active();
    if (pending.length === 0) break;
    const wake = Math.min(...pending.map((job) => due.get(job.instanceId) ?? context.now() + base));
    if (wake >= until.deadline) break;
    await clock.sleep(Math.max(wake - context.now(), base / 10));
  }
}
