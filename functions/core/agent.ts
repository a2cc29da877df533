import { MetricUnit } from "@aws-lambda-powertools/metrics";
import {
  type CommandInvocation,
  DescribeInstanceInformationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import {
  type AgentProbe,
  LINUX_VERIFY_COMMANDS,
  parseProbe,
  versionSatisfies,
  WINDOWS_VERIFY_COMMANDS,
} from "./agent-scripts.js";
import { ssm } from "./common/clients.js";
import { clock } from "./common/clock.js";
import { mapLimit } from "./common/concurrency.js";
import { awsErrorName, errorMessage, isTransient } from "./common/errors.js";
import { logger, metrics } from "./common/powertools.js";
import type { AgentConfig } from "./config.js";
import {
  type AgentPackage,
  INSTALL_DOCUMENT,
  LINUX_VERIFY_DOCUMENT,
  MAX_INSTANCE_IDS_PER_COMMAND,
  METRIC,
  WINDOWS_VERIFY_DOCUMENT,
} from "./contract.js";

/**
 * The install / wait / verify engine shared by the launch and failure paths. It is level-triggered:
 * it looks at what SSM already knows about each instance (registration, installs in flight) and
 * takes the next step, so a retry, a redelivery or a replay resumes the work instead of repeating it.
 * Every call is batched over the instances it concerns (up to 50 ids per call) and polled per
 * command, never per instance, to stay under SSM's API rate limits during a morning scale-out.
 */
const MAX_IDS_PER_CALL = MAX_INSTANCE_IDS_PER_COMMAND;
/** Delivery timeout of our commands: an instance that cannot receive one in this time fails it. */
const COMMAND_DELIVERY_TIMEOUT_SECONDS = 600;
/** How far back an install still in flight can have been sent (delivery timeout plus a long install). */
const IN_FLIGHT_LOOKBACK_MS = 2 * 3600_000;
/** Right after SendCommand, ListCommandInvocations can answer an empty list for a while (eventual consistency). */
const INVOCATION_VISIBILITY_GRACE_MS = 60_000;

export interface AgentSettings {
  agentPackage: AgentPackage;
  /** "" installs the latest published version. */
  agentVersion: string;
  verify: boolean;
  installAttempts: number;
  pollIntervalMs: number;
  dryRun: boolean;
}

export function agentSettings(config: AgentConfig): AgentSettings {
  return {
    agentPackage: config.AGENT_PACKAGE,
    agentVersion: config.AGENT_VERSION,
    verify: config.VERIFY_AGENT,
    installAttempts: config.INSTALL_ATTEMPTS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    dryRun: config.DRY_RUN,
  };
}

/**
 * - `install`: install (or follow an install already sent since `since`), then verify.
 * - `verify-first`: verify; install only when the agent is missing, stopped or not the pinned version.
 * - `upgrade`: verify to record the version before, install, verify again.
 */
export type EnsureMode = "install" | "verify-first" | "upgrade";

export interface EnsureAgentsRequest {
  instanceIds: string[];
  mode: EnsureMode;
  /** AWS-time ms; installs of this package sent after it count as this job's own (resume). */
  since?: number;
  /** AWS-time ms; an instance not Online with SSM by then fails. */
  registrationDeadline: number;
  /** AWS-time ms; stop and leave unfinished instances PENDING. */
  deadline: number;
  correlationId: string;
  /**
   * Called once per poll round with the instances still in progress (heartbeats live here); returns
   * the instances to stop working on (for example because their lifecycle action ended).
   */
  onTick?: (now: number, pending: string[]) => Promise<readonly string[] | undefined>;
  /**
   * Called as soon as an instance's result is final (not PENDING), while the others are still being
   * worked on, so its lifecycle action can be completed at once. Awaited before ensureAgents returns.
   */
  onSettled?: (result: AgentResult) => Promise<void>;
}

export type AgentStatus = "VERIFIED" | "INSTALLED" | "FAILED" | "PENDING" | "DRY_RUN" | "STOPPED";

export interface AgentResult {
  instanceId: string;
  /**
   * VERIFIED: running and acceptable; INSTALLED: installed, verification switched off; DRY_RUN: stopped
   * before the first SendCommand; PENDING: unfinished when the time budget ran out; STOPPED: the
   * caller asked to stop (its lifecycle action ended).
   */
  status: AgentStatus;
  reason: string;
  platform?: string;
  versionBefore?: string;
  agentVersion?: string;
  installCommandIds: string[];
  verifyCommandIds: string[];
  /** True when this job sent (or followed) an install that succeeded. */
  installed: boolean;
}

type Phase =
  | "registering"
  | "probe" // verify before installing (verify-first, upgrade)
  | "probing"
  | "install"
  | "installing"
  | "verify"
  | "verifying"
  | "done";

interface Tracked extends AgentResult {
  phase: Phase;
  attempts: number;
  commandId?: string;
  sentAt?: number;
  readySince?: number;
  probeDone: boolean;
}

const IN_FLIGHT = new Set(["Pending", "InProgress", "Delayed", "Cancelling"]);

export async function ensureAgents(
  request: EnsureAgentsRequest,
  settings: AgentSettings,
): Promise<AgentResult[]> {
  const tracked = new Map<string, Tracked>();
  for (const instanceId of new Set(request.instanceIds)) {
    tracked.set(instanceId, {
      instanceId,
      status: "PENDING",
      reason: "waiting for SSM registration",
      installCommandIds: [],
      verifyCommandIds: [],
      installed: false,
      phase: "registering",
      attempts: 0,
      probeDone: false,
    });
  }
  const engine = new Engine(request, settings, tracked);
  await engine.run();
  return [...tracked.values()].map(toResult);
}

function toResult(item: Tracked): AgentResult {
  const {
    phase: _phase,
    attempts: _a,
    commandId: _c,
    sentAt: _s,
    readySince: _r,
    probeDone: _p,
    ...result
  } = item;
  return result;
}

/**
 * Poll and send pacing, in poll intervals. An install of the agent takes tens of seconds, so its
 * first look waits three intervals; the verification script takes a second or two. Instances that
 * become ready close together share one command: installs go out at most every two intervals,
 * verifications every interval. Fewer, fuller commands are fewer polls: this is what keeps a
 * 50-instance batch near one SSM call per instance (measured by `npm run bench`).
 */
const INSTALL_FIRST_POLL_INTERVALS = 4;
const VERIFY_FIRST_POLL_INTERVALS = 0.6;
const INSTALL_SEND_GAP_INTERVALS = 3;
const VERIFY_SEND_GAP_INTERVALS = 2;
/** Commands looked at side by side in one round. */
const COMMAND_POLLS_IN_FLIGHT = 5;
/** While nothing changes, waits grow 1.5 times up to this many poll intervals. */
const MAX_BACKOFF_INTERVALS = 2;

interface PollSchedule {
  dueAt: number;
  interval: number;
}

class Engine {
  private readonly installComment: string;
  private readonly verifyComment: string;
  private registrationPoll: PollSchedule = { dueAt: 0, interval: 0 };
  /** When each command in flight is next looked at (per command, never per instance). */
  private readonly commandPolls = new Map<string, PollSchedule>();
  /** Completions handed to the caller while the others are still being worked on. */
  private readonly settling: Promise<void>[] = [];
  private settleError: unknown;
  private readonly lastSent = { install: Number.NEGATIVE_INFINITY, verify: Number.NEGATIVE_INFINITY };
  /** Installs sent before this run (earlier deliveries, duplicates) are looked for once, before the first send. */
  private adopted = false;

  constructor(
    private readonly request: EnsureAgentsRequest,
    private readonly settings: AgentSettings,
    private readonly tracked: Map<string, Tracked>,
  ) {
    this.installComment = `agentfix install ${request.correlationId}`.slice(0, 100);
    this.verifyComment = `agentfix verify ${request.correlationId}`.slice(0, 100);
    this.registrationPoll.interval = settings.pollIntervalMs;
  }

  /**
   * Each round does what is due: a registration poll for every instance still registering, the
   * sends that are ready, and a look at each command whose poll is due. Waits grow while nothing
   * changes and return to the base interval as soon as something does, so a quiet batch costs few
   * calls and a busy one is followed closely.
   */
  async run(): Promise<void> {
    const base = this.settings.pollIntervalMs;
    while (this.active().length > 0 && clock.now() < this.request.deadline) {
      if (this.registering().length > 0 && clock.now() >= this.registrationPoll.dueAt) {
        const before = this.registering().length;
        await this.step(this.registering(), () => this.pollRegistration());
        this.registrationPoll = this.reschedule(
          this.registrationPoll,
          this.registering().length < before,
          base,
        );
      }
      if (this.sendDue("install")) await this.step(this.inPhase("install"), () => this.sendInstalls());
      await this.step(this.dueCommands("installing"), () => this.pollCommands("installing"));
      if (this.sendDue("verify"))
        await this.step(this.inPhase("probe", "verify"), () => this.sendVerifications());
      await this.step(this.dueCommands("probing", "verifying"), () => this.pollCommands("verifying"));
      const pending = this.active().map((item) => item.instanceId);
      if (pending.length === 0) break;
      const stop = this.request.onTick ? await this.request.onTick(clock.now(), pending) : undefined;
      for (const instanceId of stop ?? []) {
        const item = this.tracked.get(instanceId);
        if (item && item.phase !== "done")
          this.finish(item, "STOPPED", "the lifecycle action ended while the agent was being set up");
      }
      const wake = this.nextWake();
      if (wake >= this.request.deadline) break;
      await clock.sleep(Math.max(wake - clock.now(), base / 10));
    }
    for (const item of this.active()) {
      item.reason = `still ${describePhase(item.phase)} when the time budget ran out; resumes on the next delivery`;
    }
    await Promise.all(this.settling);
    if (this.settleError) throw this.settleError;
  }

  private reschedule(poll: PollSchedule, progressed: boolean, base: number): PollSchedule {
    const interval = progressed ? base : Math.min(poll.interval * 1.5, base * MAX_BACKOFF_INTERVALS);
    return { interval, dueAt: clock.now() + interval * (0.9 + Math.random() * 0.2) };
  }

  /** The earliest moment something is due: a registration poll, a command poll, or a send. */
  private nextWake(): number {
    const base = this.settings.pollIntervalMs;
    const times: number[] = [];
    if (this.registering().length > 0) times.push(this.registrationPoll.dueAt);
    for (const item of this.active()) {
      const poll = item.commandId ? this.commandPolls.get(item.commandId) : undefined;
      if (poll) times.push(poll.dueAt);
      if (item.phase === "install") times.push(this.lastSent.install + INSTALL_SEND_GAP_INTERVALS * base);
      if (item.phase === "probe" || item.phase === "verify")
        times.push(this.lastSent.verify + VERIFY_SEND_GAP_INTERVALS * base);
    }
    return times.length > 0 ? Math.min(...times) : clock.now() + base;
  }

  /** Whether a send of this kind may go out now (see the pacing above). */
  private sendDue(kind: "install" | "verify"): boolean {
    const gap = kind === "install" ? INSTALL_SEND_GAP_INTERVALS : VERIFY_SEND_GAP_INTERVALS;
    return clock.now() - this.lastSent[kind] >= gap * this.settings.pollIntervalMs;
  }

  private dueCommands(...phases: Phase[]): Tracked[] {
    const now = clock.now();
    return this.inPhase(...phases).filter(
      (item) => (this.commandPolls.get(item.commandId ?? "")?.dueAt ?? 0) <= now,
    );
  }

  private trackCommand(commandId: string, kind: "install" | "verify"): void {
    const base = this.settings.pollIntervalMs;
    const first = base * (kind === "install" ? INSTALL_FIRST_POLL_INTERVALS : VERIFY_FIRST_POLL_INTERVALS);
    this.commandPolls.set(commandId, { dueAt: clock.now() + first, interval: base });
  }

  /** Runs one phase; a throttled or failing SSM call leaves its instances for the next round. */
  private async step(items: Tracked[], action: () => Promise<void>): Promise<void> {
    if (items.length === 0 || clock.now() >= this.request.deadline) return;
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

  private active(): Tracked[] {
    return [...this.tracked.values()].filter((item) => item.phase !== "done");
  }

  private inPhase(...phases: Phase[]): Tracked[] {
    return [...this.tracked.values()].filter((item) => phases.includes(item.phase));
  }

  private registering(): Tracked[] {
    return this.inPhase("registering");
  }

  private fingerprint(): string {
    return [...this.tracked.values()].map((item) => `${item.phase}:${item.commandId ?? ""}`).join(",");
  }

  private finish(item: Tracked, status: AgentStatus, reason: string): void {
    item.phase = "done";
    item.status = status;
    item.reason = reason;
    item.commandId = undefined;
    const settle = this.request.onSettled;
    if (settle) {
      // Completed at once, while the rest of the batch is still being worked on; awaited (and its
      // error rethrown) before run() returns.
      this.settling.push(
        settle(toResult(item)).catch((error: unknown) => {
          this.settleError ??= error;
        }),
      );
    }
  }

  // --- registration -------------------------------------------------------------------------

  private async pollRegistration(): Promise<void> {
    const items = this.registering();
    const online = new Map<string, string>();
    for (const chunk of chunks(items, MAX_IDS_PER_CALL)) {
      let nextToken: string | undefined;
      do {
        const page = await ssm.send(
          new DescribeInstanceInformationCommand({
            Filters: [{ Key: "InstanceIds", Values: chunk.map((item) => item.instanceId) }],
            MaxResults: MAX_IDS_PER_CALL,
            NextToken: nextToken,
          }),
        );
        for (const info of page.InstanceInformationList ?? []) {
          // Stopped instances are left out of the answer, and ConnectionLost cannot take commands
          // (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html).
          if (info.InstanceId && info.PingStatus === "Online") {
            online.set(info.InstanceId, info.PlatformType ?? "Linux");
          }
        }
        nextToken = page.NextToken;
      } while (nextToken);
    }
    const now = clock.now();
    for (const item of items) {
      const platform = online.get(item.instanceId);
      if (platform) {
        item.platform = platform;
        this.afterRegistration(item, now);
      } else if (now >= this.request.registrationDeadline) {
        this.finish(
          item,
          "FAILED",
          "never came Online with SSM (check the instance profile, SSM Agent and its network path)",
        );
      }
    }
  }

  private afterRegistration(item: Tracked, now: number): void {
    item.readySince = now;
    if (this.request.mode === "install") {
      item.phase = "install";
      item.reason = "registered with SSM";
    } else {
      item.phase = this.settings.verify || this.request.mode === "upgrade" ? "probe" : "install";
      item.reason = "registered with SSM; checking the agent";
    }
  }

  // --- install ------------------------------------------------------------------------------

  private async sendInstalls(): Promise<void> {
    const ready = this.inPhase("install");
    // Never send a second install while one is in flight on an instance: a State Manager association
    // or an earlier delivery may have started one. Concurrent installs of one package fail on the
    // instance (amazon-ssm-agent configurepackage_lock.go).
    if (!this.adopted) {
      await this.adoptExistingInstalls(ready);
      this.adopted = true;
    }
    const toSend = this.inPhase("install");
    if (toSend.length === 0) return;
    if (this.settings.dryRun) {
      for (const item of toSend)
        this.finish(item, "DRY_RUN", `dry run: would install ${this.settings.agentPackage} now`);
      return;
    }
    for (const chunk of chunks(toSend, MAX_IDS_PER_CALL)) {
      await this.sendInstallChunk(chunk);
    }
  }

  private async sendInstallChunk(chunk: Tracked[]): Promise<void> {
    try {
      const response = await ssm.send(
        new SendCommandCommand({
          DocumentName: INSTALL_DOCUMENT,
          InstanceIds: chunk.map((item) => item.instanceId),
          // "In-place update" is not supported for AWS-published packages
          // (https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-command-ssm-plugin-reference.html#aws-configurePackage).
          Parameters: {
            action: ["Install"],
            installationType: ["Uninstall and reinstall"],
            name: [this.settings.agentPackage],
            version: [this.settings.agentVersion],
            additionalArguments: ["{}"],
          },
          Comment: this.installComment,
          TimeoutSeconds: COMMAND_DELIVERY_TIMEOUT_SECONDS,
        }),
      );
      const commandId = response.Command?.CommandId ?? "";
      const now = clock.now();
      this.trackCommand(commandId, "install");
      this.lastSent.install = clock.now();
      for (const item of chunk) {
        item.phase = "installing";
        item.commandId = commandId;
        item.sentAt = now;
        item.attempts += 1;
        item.installCommandIds.push(commandId);
        item.reason = `installing ${this.settings.agentPackage} (attempt ${item.attempts}, command ${commandId})`;
      }
      metrics.addMetric(METRIC.installsSent, MetricUnit.Count, chunk.length);
    } catch (error) {
      await this.handleSendError(error, chunk, (subset) => this.sendInstallChunk(subset));
    }
  }

  /**
   * `InvalidInstanceId` fails the whole SendCommand when one instance cannot take commands (not yet
   * registered, or terminating). The message names the instances (`Instances [[i-...]] not in a valid
   * state`), so those go back to waiting for registration and the others are sent again.
   * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
   */
  private async handleSendError(
    error: unknown,
    chunk: Tracked[],
    resend: (subset: Tracked[]) => Promise<void>,
  ): Promise<void> {
    if (awsErrorName(error) !== "InvalidInstanceId") throw error;
    const named = new Set(errorMessage(error).match(/i-[0-9a-f]{8,17}/g) ?? []);
    const invalid = named.size > 0 ? chunk.filter((item) => named.has(item.instanceId)) : chunk;
    for (const item of invalid) {
      item.phase = "registering";
      item.reason = "SSM does not accept commands for it yet (InvalidInstanceId); waiting for registration";
    }
    const rest = chunk.filter((item) => !invalid.includes(item));
    if (rest.length > 0) await resend(rest);
  }

  /** Finds installs already sent to these instances and follows them instead of sending another. */
  private async adoptExistingInstalls(items: Tracked[]): Promise<void> {
    if (items.length === 0) return;
    const now = clock.now();
    const since =
      this.request.mode === "install" && this.request.since !== undefined
        ? this.request.since
        : now - IN_FLIGHT_LOOKBACK_MS;
    const wanted = new Set(items.map((item) => item.instanceId));
    const latest = new Map<string, CommandInvocation>();
    let nextToken: string | undefined;
    do {
      const page = await ssm.send(
        new ListCommandInvocationsCommand({
          Filters: [
            { key: "DocumentName", value: INSTALL_DOCUMENT },
            { key: "InvokedAfter", value: new Date(since).toISOString() },
          ],
          MaxResults: 50,
          NextToken: nextToken,
        }),
      );
      for (const invocation of page.CommandInvocations ?? []) {
        const id = invocation.InstanceId;
        if (!id || !wanted.has(id)) continue;
        const known = latest.get(id);
        if (!known || time(invocation.RequestedDateTime) > time(known.RequestedDateTime))
          latest.set(id, invocation);
      }
      nextToken = page.NextToken;
    } while (nextToken);

    for (const item of items) {
      const invocation = latest.get(item.instanceId);
      if (!invocation?.CommandId || item.installCommandIds.includes(invocation.CommandId)) continue;
      const status = invocation.Status ?? "Pending";
      const ours = this.request.mode === "install";
      if (IN_FLIGHT.has(status)) {
        item.phase = "installing";
        item.commandId = invocation.CommandId;
        if (!this.commandPolls.has(invocation.CommandId)) this.trackCommand(invocation.CommandId, "install");
        item.sentAt = time(invocation.RequestedDateTime) || now;
        item.attempts += 1;
        item.installCommandIds.push(invocation.CommandId);
        item.reason = `following the install already in flight (command ${invocation.CommandId})`;
      } else if (ours && status === "Success") {
        item.installCommandIds.push(invocation.CommandId);
        item.attempts += 1;
        item.installed = true;
        item.phase = this.settings.verify ? "verify" : "done";
        if (item.phase === "done")
          this.finish(item, "INSTALLED", "installed earlier (verification switched off)");
        else item.reason = `installed earlier by command ${invocation.CommandId}; verifying`;
      } else if (ours) {
        // An earlier delivery's failed install counts against the attempts of this launch.
        item.installCommandIds.push(invocation.CommandId);
        item.attempts += 1;
        if (item.attempts >= this.settings.installAttempts) {
          this.finish(
            item,
            "FAILED",
            `install failed ${item.attempts} time(s): ${describeInvocation(invocation)}`,
          );
        }
      }
    }
  }

  // --- verification -------------------------------------------------------------------------

  private async sendVerifications(): Promise<void> {
    const items = this.inPhase("probe", "verify");
    if (this.settings.dryRun) {
      for (const item of items)
        this.finish(item, "DRY_RUN", "dry run: would check the agent and install it if needed");
      return;
    }
    const byPlatform = new Map<string, Tracked[]>();
    for (const item of items) {
      const platform = item.platform === "Windows" ? "Windows" : "Linux";
      byPlatform.set(platform, [...(byPlatform.get(platform) ?? []), item]);
    }
    for (const [platform, group] of byPlatform) {
      for (const chunk of chunks(group, MAX_IDS_PER_CALL)) await this.sendVerifyChunk(platform, chunk);
    }
  }

  private async sendVerifyChunk(platform: string, chunk: Tracked[]): Promise<void> {
    try {
      const response = await ssm.send(
        new SendCommandCommand({
          DocumentName: platform === "Windows" ? WINDOWS_VERIFY_DOCUMENT : LINUX_VERIFY_DOCUMENT,
          InstanceIds: chunk.map((item) => item.instanceId),
          Parameters: {
            commands: platform === "Windows" ? WINDOWS_VERIFY_COMMANDS : LINUX_VERIFY_COMMANDS,
            executionTimeout: ["60"],
          },
          Comment: this.verifyComment,
          TimeoutSeconds: COMMAND_DELIVERY_TIMEOUT_SECONDS,
        }),
      );
      const commandId = response.Command?.CommandId ?? "";
      const now = clock.now();
      this.trackCommand(commandId, "verify");
      this.lastSent.verify = clock.now();
      for (const item of chunk) {
        item.phase = item.phase === "probe" ? "probing" : "verifying";
        item.commandId = commandId;
        item.sentAt = now;
        item.verifyCommandIds.push(commandId);
        item.reason = `checking the agent (command ${commandId})`;
      }
    } catch (error) {
      await this.handleSendError(error, chunk, (subset) => this.sendVerifyChunk(platform, subset));
    }
  }

  // --- polling ------------------------------------------------------------------------------

  /** One ListCommandInvocations per command (all its instances at once), never one call per instance. */
  private async pollCommands(kind: "installing" | "verifying"): Promise<void> {
    const phases: Phase[] = kind === "installing" ? ["installing"] : ["probing", "verifying"];
    const byCommand = new Map<string, Tracked[]>();
    for (const item of this.dueCommands(...phases)) {
      const id = item.commandId ?? "";
      byCommand.set(id, [...(byCommand.get(id) ?? []), item]);
    }
    // One look per due command, side by side: a command covers up to 50 instances.
    await mapLimit([...byCommand], COMMAND_POLLS_IN_FLIGHT, async ([commandId, group]) => {
      if (clock.now() >= this.request.deadline) return;
      const invocations = await this.listInvocations(commandId, kind === "verifying");
      const now = clock.now();
      let progressed = false;
      for (const item of group) {
        const invocation = invocations.get(item.instanceId);
        if (!invocation) {
          // Eventual consistency: the invocation may not be listed yet right after SendCommand.
          if (
            now - (item.sentAt ?? now) >
            INVOCATION_VISIBILITY_GRACE_MS + COMMAND_DELIVERY_TIMEOUT_SECONDS * 1000
          ) {
            this.onCommandFailed(
              item,
              `command ${commandId} never showed an invocation for this instance`,
              true,
            );
            progressed = true;
          }
          continue;
        }
        if (IN_FLIGHT.has(invocation.Status ?? "Pending")) continue;
        progressed = true;
        if (kind === "installing") this.onInstallDone(item, invocation);
        else this.onVerifyDone(item, invocation);
      }
      const poll = this.commandPolls.get(commandId);
      if (poll)
        this.commandPolls.set(commandId, this.reschedule(poll, progressed, this.settings.pollIntervalMs));
    });
  }

  private async listInvocations(
    commandId: string,
    details: boolean,
  ): Promise<Map<string, CommandInvocation>> {
    const found = new Map<string, CommandInvocation>();
    let nextToken: string | undefined;
    try {
      do {
        const page = await ssm.send(
          new ListCommandInvocationsCommand({
            CommandId: commandId,
            Details: details,
            MaxResults: 50,
            NextToken: nextToken,
          }),
        );
        for (const invocation of page.CommandInvocations ?? []) {
          if (invocation.InstanceId) found.set(invocation.InstanceId, invocation);
        }
        nextToken = page.NextToken;
      } while (nextToken);
    } catch (error) {
      // Right after SendCommand the command may not be visible yet (aws/aws-sdk#86).
      if (awsErrorName(error) !== "InvocationDoesNotExist" && awsErrorName(error) !== "InvalidCommandId")
        throw error;
    }
    return found;
  }

  private onInstallDone(item: Tracked, invocation: CommandInvocation): void {
    if (invocation.Status === "Success") {
      item.installed = true;
      metrics.addMetric(METRIC.installsSucceeded, MetricUnit.Count, 1);
      if (this.settings.verify) {
        item.phase = "verify";
        item.reason = `install succeeded (command ${invocation.CommandId}); verifying`;
      } else {
        this.finish(
          item,
          "INSTALLED",
          `installed by command ${invocation.CommandId} (verification switched off)`,
        );
      }
      return;
    }
    metrics.addMetric(METRIC.installsFailed, MetricUnit.Count, 1);
    this.onCommandFailed(item, `install ${describeInvocation(invocation)}`, unreachable(invocation));
  }

  private onCommandFailed(item: Tracked, why: string, instanceUnreachable = false): void {
    if (instanceUnreachable) {
      this.finish(item, "FAILED", `${why}; the instance cannot run commands`);
    } else if (item.attempts < this.settings.installAttempts) {
      item.phase = "install";
      item.commandId = undefined;
      item.reason = `${why}; retrying (${item.attempts} of ${this.settings.installAttempts} attempts used)`;
    } else {
      this.finish(item, "FAILED", `${why} after ${item.attempts} attempt(s)`);
    }
  }

  private onVerifyDone(item: Tracked, invocation: CommandInvocation): void {
    const probing = item.phase === "probing";
    const probe = parseProbe(commandOutput(invocation));
    if (!probe) {
      const why = `verification ${describeInvocation(invocation)} printed no agent status`;
      if (unreachable(invocation) || !probing) this.finish(item, "FAILED", why);
      else this.toInstall(item, why);
      return;
    }
    item.agentVersion = probe.version || undefined;
    if (probing) {
      item.probeDone = true;
      item.versionBefore = probe.version || (probe.state === "missing" ? "none" : "unknown");
      if (this.request.mode === "verify-first" && this.acceptable(probe)) {
        this.finish(item, "VERIFIED", `agent ${probe.version} already running; nothing to install`);
      } else {
        this.toInstall(item, `agent ${describeProbe(probe)}`);
      }
      return;
    }
    if (probe.state !== "running") {
      metrics.addMetric(METRIC.verificationsFailed, MetricUnit.Count, 1);
      this.finish(
        item,
        "FAILED",
        `install reported Success but the agent is ${probe.state} (version ${probe.version || "unknown"})`,
      );
    } else if (!versionSatisfies(probe.version, this.settings.agentVersion)) {
      metrics.addMetric(METRIC.verificationsFailed, MetricUnit.Count, 1);
      this.finish(
        item,
        "FAILED",
        `agent ${probe.version || "of unknown version"} is running, but version ${this.settings.agentVersion} is pinned`,
      );
    } else {
      metrics.addMetric(METRIC.verified, MetricUnit.Count, 1);
      this.finish(item, "VERIFIED", `agent ${probe.version} running`);
    }
  }

  private toInstall(item: Tracked, why: string): void {
    item.phase = "install";
    item.commandId = undefined;
    item.reason = `${why}; installing`;
  }

  private acceptable(probe: AgentProbe): boolean {
    return probe.state === "running" && versionSatisfies(probe.version, this.settings.agentVersion);
  }
}

/**
 * Outcomes that say the instance itself is gone or unreachable, so retrying the command cannot help
 * (StatusDetails values: https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html).
 */
const UNREACHABLE = new Set(["Terminated", "Undeliverable", "Delivery Timed Out"]);

function unreachable(invocation: CommandInvocation): boolean {
  return UNREACHABLE.has(invocation.StatusDetails ?? "");
}

function describeInvocation(invocation: CommandInvocation): string {
  const details =
    invocation.StatusDetails && invocation.StatusDetails !== invocation.Status
      ? ` (${invocation.StatusDetails})`
      : "";
  const output = commandOutput(invocation)?.trim().split("\n").slice(-1)[0];
  return `command ${invocation.CommandId} ended ${invocation.Status}${details}${output ? `: ${output.slice(0, 200)}` : ""}`;
}

function describeProbe(probe: AgentProbe): string {
  return probe.state === "missing"
    ? "not installed"
    : `${probe.state}, version ${probe.version || "unknown"}`;
}

function describePhase(phase: Phase): string {
  switch (phase) {
    case "registering":
      return "waiting for SSM registration";
    case "install":
    case "installing":
      return "installing the agent";
    default:
      return "verifying the agent";
  }
}

function commandOutput(invocation: CommandInvocation): string | undefined {
  return invocation.CommandPlugins?.map((plugin) => plugin.Output ?? "").join("\n");
}

function time(value: Date | undefined): number {
  return value ? value.getTime() : 0;
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let index = 0; index < items.length; index += size) result.push(items.slice(index, index + size));
  return result;
}
