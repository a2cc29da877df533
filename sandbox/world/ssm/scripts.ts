import { isAcceptable } from "../../../functions/core/agent/verified.js";
import {
  DEPLOYMENT_GUARD_MARKER,
  RUN_POWERSHELL_SCRIPT_DOCUMENT,
  RUN_SHELL_SCRIPT_DOCUMENT,
  SKIP_IF_CURRENT_MARKER,
  VERIFY_MARKER,
} from "../../../functions/core/contract.js";
import type { CodeDeployAgents } from "../agent.js";
import type { Instance } from "../instances.js";
import type { Random } from "../random.js";
import type { WorldServices } from "../services.js";
import type { PluginTarget } from "./invocations.js";
import type { SsmCounters, SsmOptions } from "./records.js";

/** A script step of a document: its lines, and the document parameter its probe compares against. */
export interface ScriptStep {
  lines: string[];
  /** The version the agent must run at, or newer; "" accepts any running agent. */
  expectedVersion: string;
  /** The install may restart an older agent that runs (CodeDeploy said no deployment is in flight). */
  allowRestart?: boolean;
}

interface ScriptResult {
  exitCode: number;
  stdout: string;
}

/**
 * The CodeDeploy agent ongoing-deployment file counts for 24 hours; an older one is stale, as the
 * agent itself treats it (aws-codedeploy-agent deployment_command_tracker.rb,
 * DEPLOYMENT_EVENT_FILE_STALE_TIMELIMIT_SECONDS) and the guard script does (`find -mmin -1440`).
 */
const ONGOING_DEPLOYMENT_STALE_MS = 86_400_000;

/**
 * Shell and PowerShell scripts on the instance. A script is known by its first line: the service's
 * scripts (functions/core/agent/scripts.ts) are answered from the instance's real agent and the
 * command's parameters; any other script succeeds. An AWS-RunShellScript / AWS-RunPowerShellScript
 * document for the other platform fails its precondition.
 */
export class Scripts {
  constructor(
    private readonly world: WorldServices,
    private readonly agents: CodeDeployAgents,
    private readonly counters: SsmCounters,
    private readonly options: SsmOptions,
  ) {}

  /** Runs a delivered AWS-RunShellScript / AWS-RunPowerShellScript invocation on the instance. */
  run(target: PluginTarget, instance: Instance, rng: Random): void {
    const { invocation } = target;
    target.begin();
    const duration = rng.draw(this.options.scriptSeconds ?? { min: 1, max: 3 }) * 1000;
    target.after(duration, () => {
      if (!target.running) return;
      const expected =
        instance.platform === "Windows" ? RUN_POWERSHELL_SCRIPT_DOCUMENT : RUN_SHELL_SCRIPT_DOCUMENT;
      if (invocation.documentName !== expected) {
        const platform = instance.platform === "Windows" ? "Windows" : "Linux";
        target.finish(
          "Failed",
          "Failed",
          1,
          "",
          `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, ${invocation.documentName === RUN_SHELL_SCRIPT_DOCUMENT ? "Linux" : "Windows"}]' (instance platform ${platform})`,
        );
        return;
      }
      if (invocation.kind !== "verify") {
        target.finish("Success", "Success", 0, "", "");
        return;
      }
      const result = this.verify(instance, "");
      target.finish(
        result.exitCode === 0 ? "Success" : "Failed",
        result.exitCode === 0 ? "Success" : "Failed",
        result.exitCode,
        result.stdout,
        "",
      );
    });
  }

  /** Runs an aws:runShellScript / aws:runPowerShellScript step of a document on the instance. */
  runStep(target: PluginTarget, instance: Instance, rng: Random, script: ScriptStep): void {
    target.begin();
    const duration = rng.draw(this.options.scriptSeconds ?? { min: 1, max: 3 }) * 1000;
    target.after(duration, () => {
      if (!target.running) return;
      const marker = script.lines.join("\n").split("\n")[0]?.trim();
      const { exitCode, stdout } =
        marker === VERIFY_MARKER
          ? this.verify(instance, script.expectedVersion)
          : marker === SKIP_IF_CURRENT_MARKER
            ? this.skipIfCurrent(instance, script.expectedVersion)
            : marker === DEPLOYMENT_GUARD_MARKER
              ? this.deploymentGuard(instance, script.allowRestart === true)
              : { exitCode: 0, stdout: "" };
      // runscript.go: a non-zero exit marks the plugin failed and says so on stderr.
      if (exitCode === 0) target.finish("Success", "Success", 0, stdout, "");
      else
        target.finish(
          "Failed",
          "Failed",
          exitCode,
          stdout,
          `failed to run commands: exit status ${exitCode}`,
        );
    });
  }

  /**
   * verify-agent: starts an agent present at an acceptable version but stopped (one that cannot run
   * stays stopped), then succeeds only when the agent runs at the expected version or newer; counts a
   * verification.
   */
  private verify(instance: Instance, expectedVersion: string): ScriptResult {
    this.startIfAcceptable(instance, expectedVersion);
    const probe = probeAgent(instance, expectedVersion);
    this.counters.verifications++;
    if (probe.current) {
      instance.milestones.verified = this.world.now();
      instance.milestones.firstVerified ??= instance.milestones.verified;
      instance.changed.notify();
    }
    this.world.trace.record({
      at: this.world.now(),
      kind: probe.current ? "verify.running" : "verify.not-running",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message:
        `${instance.id} verification: agent ${probe.status} ${probe.version}${expectedVersion && !probe.current ? ` (expected ${expectedVersion})` : ""}`.trim(),
      data: expectedVersion ? { expectedVersion } : undefined,
    });
    return {
      exitCode: probe.current ? 0 : 1,
      stdout: `AGENTFIX_AGENT_STATUS=${probe.status} AGENTFIX_AGENT_VERSION=${probe.version}\n`,
    };
  }

  /**
   * skip-if-current: fails (so that onFailure: successAndExit ends the document with Success) when
   * the running agent already has the expected version; "latest" (empty) never counts as current.
   */
  private skipIfCurrent(instance: Instance, expectedVersion: string): ScriptResult {
    const seen = probeAgent(instance, expectedVersion);
    const before = `AGENTFIX_BEFORE_STATUS=${seen.status} AGENTFIX_BEFORE_VERSION=${seen.version}\n`;
    if (expectedVersion !== "") this.startIfAcceptable(instance, expectedVersion);
    const probe = probeAgent(instance, expectedVersion);
    if (expectedVersion === "" || !probe.current) return { exitCode: 0, stdout: before };
    // The agent was seen running at the expected version: as good as a verification for the instance.
    instance.milestones.verified = this.world.now();
    instance.milestones.firstVerified ??= instance.milestones.verified;
    instance.changed.notify();
    this.world.trace.record({
      at: this.world.now(),
      kind: "install.skipped-current",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} agent already runs ${probe.version} (expected ${expectedVersion}): nothing to install`,
    });
    return {
      exitCode: 1,
      stdout: `${before}AGENTFIX_AGENT_STATUS=${probe.status} AGENTFIX_AGENT_VERSION=${probe.version}\nAGENTFIX_ALREADY_CURRENT=${probe.short}\n`,
    };
  }

  private startIfAcceptable(instance: Instance, expectedVersion: string): void {
    const probe = probeAgent(instance, expectedVersion);
    if (probe.status === "stopped" && isAcceptable(probe.short, expectedVersion)) this.agents.start(instance);
  }

  /**
   * deployment-guard: fails while the agent runs and has an ongoing-deployment file younger than 24
   * hours. A stopped or crashed agent leaves its file behind, but runs no event a restart could fail.
   */
  private deploymentGuard(instance: Instance, allowRestart: boolean): ScriptResult {
    const ongoing = instance.agent.ongoingDeployment;
    if (
      !ongoing ||
      !instance.agent.running ||
      this.world.now() - ongoing.since >= ONGOING_DEPLOYMENT_STALE_MS
    ) {
      if (allowRestart || !instance.agent.running)
        return {
          exitCode: 0,
          stdout: "AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=none\n",
        };
      const short = probeAgent(instance, "").short || "unknown";
      this.world.trace.record({
        at: this.world.now(),
        kind: "install.restart-check",
        instanceId: instance.id,
        groupName: instance.groupName ?? undefined,
        message: `${instance.id} install held back: agent ${short} runs, and CodeDeploy is to be asked first`,
      });
      return {
        exitCode: 1,
        stdout: `AGENTFIX_DEPLOYMENT_IN_PROGRESS=none\nAGENTFIX_RESTART_NEEDED=${short}\n`,
      };
    }
    this.world.trace.record({
      at: this.world.now(),
      kind: "install.deployment-guard",
      instanceId: instance.id,
      deploymentId: ongoing.deploymentId,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} install held back: a lifecycle event of ${ongoing.deploymentId} runs there`,
    });
    return { exitCode: 1, stdout: `AGENTFIX_DEPLOYMENT_IN_PROGRESS=${ongoing.deploymentId}\n` };
  }
}

/**
 * The probe the service's scripts share (functions/core/agent/scripts.ts): missing, stopped or
 * running; the version as the agent records it; current when it runs at the expected version or newer
 * (the one rule of functions/core/agent/verified.ts, which the scripts implement).
 */
function probeAgent(instance: Instance, expectedVersion: string) {
  const agent = instance.agent;
  const status = agent.package === null ? "missing" : agent.running ? "running" : "stopped";
  const version = agent.version ?? "";
  const short = /\d+\.\d+(\.\d+)?/.exec(version)?.[0] ?? "";
  const current = status === "running" && isAcceptable(short, expectedVersion);
  return { status, version, short, current };
}
