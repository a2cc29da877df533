// The install / wait / verify engine shared by the launch and failure paths. It is level-triggered:
// it looks at what SSM already knows about each instance (registration, installs in flight) and
// takes the next step, so a retry, a redelivery or a replay resumes the work instead of repeating it.
// Every call is batched over the instances it concerns (up to 50 ids per call) and polled per
// command, never per instance, to stay under SSM's API rate limits during a morning scale-out.
// The phases an instance goes through are drawn in ./README.md.
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { CommandInvocation } from "@aws-sdk/client-ssm";
import { clock } from "../common/clock.js";
import { chunk, mapLimit } from "../common/concurrency.js";
import { awsErrorName, errorMessage, isTransient } from "../common/errors.js";
import { logger, metrics } from "../common/powertools.js";
import { MAX_INSTANCE_IDS_PER_COMMAND, METRIC } from "../contract.js";
import { type CommandKind, Pacer } from "./pacing.js";
import {
  COMMAND_DELIVERY_TIMEOUT_SECONDS,
  checkCommand,
  describeOnline,
  IN_FLIGHT_STATUSES,
  installCommand,
  instancesRefused,
  latestInstallsSince,
  listInvocations,
  requestedAt,
  sendCommand,
} from "./ssm-commands.js";
import {
  type AgentJob,
  type AgentResult,
  type AgentSettings,
  type AgentStatus,
  describePhase,
  type EnsureAgentsRequest,
  newJob,
  type Phase,
  toResult,
} from "./types.js";
import {
  judgeEarlierInstall,
  judgeFailedCommand,
  judgeInstall,
  judgeVerification,
  type Verdict,
  versionBefore,
} from "./verdicts.js";
import { expectedVersion, noteLatestInstalled } from "./versions.js";

/** How far back an install still in flight can have been sent (delivery timeout plus a long install). */
const IN_FLIGHT_LOOKBACK_MS = 2 * 3600_000;
/** Right after SendCommand, ListCommandInvocations can answer an empty list for a while (eventual consistency). */
const INVOCATION_VISIBILITY_GRACE_MS = 60_000;
/** Commands looked at side by side in one round. */
const COMMAND_POLLS_IN_FLIGHT = 5;

export async function ensureAgents(
  request: EnsureAgentsRequest,
  settings: AgentSettings,
): Promise<AgentResult[]> {
  const jobs = new Map<string, AgentJob>();
  for (const instanceId of new Set(request.instanceIds)) jobs.set(instanceId, newJob(instanceId));
  await new AgentEngine(request, settings, jobs).run();
  return [...jobs.values()].map(toResult);
}

class AgentEngine {
  private readonly installComment: string;
  private readonly verifyComment: string;
  private readonly pacer: Pacer;
  /** Completions handed to the caller while the others are still being worked on. */
  private readonly settling: Promise<void>[] = [];
  private settleError: unknown;
  /** Installs sent before this run (earlier deliveries, duplicates) are looked for once, before the first send. */
  private adopted = false;
  /** The version the agent must run at (pinned, else the newest known); "" accepts any. */
  private expected = "";

  constructor(
    private readonly request: EnsureAgentsRequest,
    private readonly settings: AgentSettings,
    private readonly jobs: Map<string, AgentJob>,
  ) {
    this.installComment = `agentfix install ${request.correlationId}`.slice(0, 100);
    this.verifyComment = `agentfix verify ${request.correlationId}`.slice(0, 100);
    this.pacer = new Pacer(settings.pollIntervalMs);
  }

  /** Each round does what is due: a registration poll, the sends that are ready, the due command polls. */
  async run(): Promise<void> {
    const base = this.settings.pollIntervalMs;
    this.expected = await expectedVersion(this.settings);
    while (this.active().length > 0 && clock.now() < this.request.deadline) {
      if (this.inPhase("registering").length > 0 && this.pacer.registrationDue()) {
        const before = this.inPhase("registering").length;
        await this.step(this.inPhase("registering"), () => this.pollRegistration());
        this.pacer.registrationPolled(this.inPhase("registering").length < before);
      }
      if (this.pacer.sendDue("install")) await this.step(this.readyToInstall(), () => this.sendInstalls());
      await this.step(this.dueCommands("installing"), () => this.pollCommands("install"));
      if (this.pacer.sendDue("verify"))
        await this.step(this.inPhase("probe", "verify"), () => this.sendVerifications());
      await this.step(this.dueCommands("probing", "verifying"), () => this.pollCommands("verify"));
      const pending = this.active().map((job) => job.instanceId);
      if (pending.length === 0) break;
      const stop = this.request.onTick ? await this.request.onTick(clock.now(), pending) : undefined;
      for (const instanceId of stop ?? []) {
        const job = this.jobs.get(instanceId);
        if (job && job.phase !== "done")
          this.finish(job, "STOPPED", "the lifecycle action ended while the agent was being set up");
      }
      const wake = this.pacer.nextWake(this.active(), this.inPhase("registering").length > 0);
      if (wake >= this.request.deadline) break;
      await clock.sleep(Math.max(wake - clock.now(), base / 10));
    }
    for (const job of this.active()) {
      job.reason = `still ${describePhase(job.phase)} when the time budget ran out; resumes on the next delivery`;
    }
    await Promise.all(this.settling);
    if (this.settleError) throw this.settleError;
  }

  /** Runs one phase; a throttled or failing SSM call leaves its instances for the next round. */
  private async step(jobs: AgentJob[], action: () => Promise<void>): Promise<void> {
    if (jobs.length === 0 || clock.now() >= this.request.deadline) return;
    try {
      await action();
    } catch (error) {
      if (!isTransient(error)) throw error;
      logger.warn("SSM call throttled or failed transiently; retrying on the next poll", {
        error: errorMessage(error),
        errorName: awsErrorName(error),
      });
    }
  }

  private active(): AgentJob[] {
    return [...this.jobs.values()].filter((job) => job.phase !== "done");
  }

  private inPhase(...phases: Phase[]): AgentJob[] {
    return [...this.jobs.values()].filter((job) => phases.includes(job.phase));
  }

  /** Instances waiting to install, less those waiting out a deployment or another install. */
  private readyToInstall(): AgentJob[] {
    const now = clock.now();
    return this.inPhase("install").filter((job) => (job.retryAt ?? 0) <= now);
  }

  private dueCommands(...phases: Phase[]): AgentJob[] {
    const now = clock.now();
    return this.inPhase(...phases).filter((job) => this.pacer.isDue(job.commandId, now));
  }

  private finish(job: AgentJob, status: AgentStatus, reason: string): void {
    job.phase = "done";
    job.expectedVersion = this.expected;
    job.status = status;
    job.reason = reason;
    job.commandId = undefined;
    const settle = this.request.onSettled;
    if (settle) {
      // Completed at once, while the rest of the batch is still being worked on; awaited (and its
      // error rethrown) before run() returns.
      this.settling.push(
        settle(toResult(job)).catch((error: unknown) => {
          this.settleError ??= error;
        }),
      );
    }
  }

  /** Applies a verdict: a final status, or the next phase (a new install forgets the old command). */
  private apply(job: AgentJob, verdict: Verdict): void {
    if ("finish" in verdict) {
      this.finish(job, verdict.finish, verdict.reason);
      return;
    }
    job.phase = verdict.next;
    if (verdict.next === "install") job.commandId = undefined;
    job.reason = verdict.reason;
  }

  private async pollRegistration(): Promise<void> {
    const jobs = this.inPhase("registering");
    const online = await describeOnline(jobs.map((job) => job.instanceId));
    const now = clock.now();
    for (const job of jobs) {
      const platform = online.get(job.instanceId);
      if (platform) {
        job.platform = platform;
        job.readySince = now;
        const checkFirst =
          this.request.mode !== "install" && (this.settings.verify || this.request.mode === "upgrade");
        job.phase = checkFirst ? "probe" : "install";
        job.reason =
          this.request.mode === "install" ? "registered with SSM" : "registered with SSM; checking the agent";
      } else if (
        now >= (this.request.registrationDeadlines?.get(job.instanceId) ?? this.request.registrationDeadline)
      ) {
        this.finish(
          job,
          "FAILED",
          "never came Online with SSM (check the instance profile, SSM Agent and its network path)",
        );
      }
    }
  }

  private async sendInstalls(): Promise<void> {
    // Never send a second install while one is in flight on an instance: a State Manager association
    // or an earlier delivery may have started one. Concurrent installs of one package fail on the
    // instance (amazon-ssm-agent configurepackage_lock.go).
    if (!this.adopted) {
      await this.adoptExistingInstalls(this.inPhase("install"));
      this.adopted = true;
    }
    const toSend = this.readyToInstall();
    if (toSend.length === 0) return;
    if (this.settings.dryRun) {
      for (const job of toSend)
        this.finish(job, "DRY_RUN", `dry run: would install ${this.settings.agentPackage} now`);
      return;
    }
    for (const jobs of chunk(toSend, MAX_INSTANCE_IDS_PER_COMMAND)) await this.send("install", jobs);
  }

  private async sendVerifications(): Promise<void> {
    const jobs = this.inPhase("probe", "verify");
    if (this.settings.dryRun) {
      for (const job of jobs)
        this.finish(job, "DRY_RUN", "dry run: would check the agent and install it if needed");
      return;
    }
    // One document for every platform: each step runs only where its precondition matches.
    for (const jobsOfChunk of chunk(jobs, MAX_INSTANCE_IDS_PER_COMMAND))
      await this.send("verify", jobsOfChunk);
  }

  /** One command to these instances; those SSM refuses go back to waiting for registration. */
  private async send(kind: CommandKind, jobs: AgentJob[]): Promise<void> {
    try {
      const instanceIds = jobs.map((job) => job.instanceId);
      const command =
        kind === "install"
          ? installCommand(this.settings, instanceIds, this.installComment, this.expected)
          : checkCommand(this.settings, instanceIds, this.verifyComment, this.expected);
      const commandId = await sendCommand(command);
      const now = clock.now();
      this.pacer.sent(commandId, kind);
      for (const job of jobs) this.markSent(job, kind, commandId, now);
      if (kind === "install") metrics.addMetric(METRIC.installsSent, MetricUnit.Count, jobs.length);
    } catch (error) {
      const refused = instancesRefused(
        error,
        jobs.map((job) => job.instanceId),
      );
      if (!refused) throw error;
      const invalid = jobs.filter((job) => refused.includes(job.instanceId));
      for (const job of invalid) {
        job.phase = "registering";
        job.reason = "SSM does not accept commands for it yet (InvalidInstanceId); waiting for registration";
      }
      const rest = jobs.filter((job) => !invalid.includes(job));
      if (rest.length > 0) await this.send(kind, rest);
    }
  }

  private markSent(job: AgentJob, kind: CommandKind, commandId: string, now: number): void {
    job.commandId = commandId;
    job.sentAt = now;
    if (kind === "install") {
      job.phase = "installing";
      job.attempts += 1;
      job.installCommandIds.push(commandId);
      job.reason = `installing ${this.settings.agentPackage} (attempt ${job.attempts}, command ${commandId})`;
    } else {
      job.phase = job.phase === "probe" ? "probing" : "verifying";
      job.verifyCommandIds.push(commandId);
      job.reason = `checking the agent (command ${commandId})`;
    }
  }

  /** Finds installs already sent to these instances and follows them instead of sending another. */
  private async adoptExistingInstalls(jobs: AgentJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const now = clock.now();
    const ours = this.request.mode === "install";
    const since = ours && this.request.since !== undefined ? this.request.since : now - IN_FLIGHT_LOOKBACK_MS;
    const latest = await latestInstallsSince(
      this.settings.installDocument,
      jobs.map((job) => job.instanceId),
      since,
    );
    for (const job of jobs) {
      const invocation = latest.get(job.instanceId);
      if (!invocation?.CommandId || job.installCommandIds.includes(invocation.CommandId)) continue;
      const judgement = judgeEarlierInstall(invocation, ours, job.attempts + 1, this.settings);
      if (judgement === "ignore") continue;
      job.attempts += 1;
      job.installCommandIds.push(invocation.CommandId);
      if (judgement === "follow") {
        job.phase = "installing";
        job.commandId = invocation.CommandId;
        if (!this.pacer.isTracked(invocation.CommandId)) this.pacer.track(invocation.CommandId, "install");
        job.sentAt = requestedAt(invocation) || now;
        job.reason = `following the install already in flight (command ${invocation.CommandId})`;
        continue;
      }
      if (judgement.installed) job.installed = true;
      if (judgement.verdict) this.apply(job, judgement.verdict);
    }
  }

  /** One look per due command, side by side: a command covers up to 50 instances. */
  private async pollCommands(kind: CommandKind): Promise<void> {
    const phases: Phase[] = kind === "install" ? ["installing"] : ["probing", "verifying"];
    const byCommand = new Map<string, AgentJob[]>();
    for (const job of this.dueCommands(...phases)) {
      const id = job.commandId ?? "";
      byCommand.set(id, [...(byCommand.get(id) ?? []), job]);
    }
    await mapLimit([...byCommand], COMMAND_POLLS_IN_FLIGHT, async ([commandId, jobs]) => {
      if (clock.now() >= this.request.deadline) return;
      const invocations = await listInvocations(commandId, true);
      const now = clock.now();
      let progressed = false;
      for (const job of jobs) {
        const invocation = invocations.get(job.instanceId);
        if (!invocation) {
          // Eventual consistency: the invocation may not be listed yet right after SendCommand.
          if (
            now - (job.sentAt ?? now) >
            INVOCATION_VISIBILITY_GRACE_MS + COMMAND_DELIVERY_TIMEOUT_SECONDS * 1000
          ) {
            const why = `command ${commandId} never showed an invocation for this instance`;
            this.apply(job, judgeFailedCommand(why, true, job.attempts, this.settings.installAttempts));
            progressed = true;
          }
          continue;
        }
        if (IN_FLIGHT_STATUSES.has(invocation.Status ?? "Pending")) continue;
        progressed = true;
        if (kind === "install") this.onInstallEnded(job, invocation);
        else this.onVerificationEnded(job, invocation);
      }
      this.pacer.commandPolled(commandId, progressed);
    });
  }

  private onInstallEnded(job: AgentJob, invocation: CommandInvocation): void {
    const judgement = judgeInstall(invocation, this.settings, job.attempts, this.expected);
    const { before, after, verdict } = judgement;
    if (judgement.installed) job.installed = true;
    if (before) {
      if (!job.probeDone) job.versionBefore = versionBefore(before);
      if (before.state === "running") job.runningBefore = before.version || "unknown";
    }
    if (after) job.agentVersion = after.version || undefined;
    if (judgement.installed && !this.settings.agentVersion)
      noteLatestInstalled(this.settings.agentPackage, after?.version);
    for (const metric of judgement.metrics ?? []) metrics.addMetric(metric, MetricUnit.Count, 1);
    if ("next" in verdict && verdict.retryAfterMs) {
      // Nothing was installed: waiting for a deployment or another install costs no attempt.
      job.attempts -= 1;
      job.retryAt = clock.now() + verdict.retryAfterMs;
    }
    this.apply(job, verdict);
  }

  private onVerificationEnded(job: AgentJob, invocation: CommandInvocation): void {
    const probing = job.phase === "probing";
    const judgement = judgeVerification(invocation, probing, this.request.mode, this.expected);
    const probe = judgement.probe;
    if (probe) {
      job.agentVersion = probe.version || undefined;
      if (probing) {
        job.probeDone = true;
        job.versionBefore = versionBefore(probe);
      }
    }
    for (const metric of judgement.metrics ?? []) metrics.addMetric(metric, MetricUnit.Count, 1);
    this.apply(job, judgement.verdict);
  }
}
