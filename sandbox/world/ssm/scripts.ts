import { LINUX_VERIFY_DOCUMENT, WINDOWS_VERIFY_DOCUMENT } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { Random } from "../random.js";
import type { WorldServices } from "../services.js";
import type { Invocations } from "./invocations.js";
import type { Invocation, SsmCounters, SsmOptions } from "./records.js";

/**
 * Shell and PowerShell scripts on the instance. A document for the other platform fails its
 * precondition; the service's verification script (first line VERIFY_MARKER) is answered from the
 * instance's real agent; any other script succeeds.
 */
export class Scripts {
  constructor(
    private readonly world: WorldServices,
    private readonly invocations: Invocations,
    private readonly counters: SsmCounters,
    private readonly options: SsmOptions,
  ) {}

  /** Runs a delivered script on the instance. */
  run(invocation: Invocation, instance: Instance, rng: Random): void {
    this.invocations.markInProgress(invocation);
    const duration = rng.draw(this.options.scriptSeconds ?? { min: 1, max: 3 }) * 1000;
    invocation.timers.push(
      this.world.scheduler.after(duration, () => {
        if (invocation.status !== "InProgress") return;
        const expected = instance.platform === "Windows" ? WINDOWS_VERIFY_DOCUMENT : LINUX_VERIFY_DOCUMENT;
        if (invocation.documentName !== expected) {
          const platform = instance.platform === "Windows" ? "Windows" : "Linux";
          this.invocations.finish(
            invocation,
            "Failed",
            "Failed",
            1,
            "",
            `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, ${invocation.documentName === LINUX_VERIFY_DOCUMENT ? "Linux" : "Windows"}]' (instance platform ${platform})`,
          );
          return;
        }
        if (invocation.kind !== "verify") {
          this.invocations.finish(invocation, "Success", "Success", 0, "", "");
          return;
        }
        this.verify(invocation, instance);
      }),
    );
  }

  private verify(invocation: Invocation, instance: Instance): void {
    const agent = instance.agent;
    const status = agent.package === null ? "missing" : agent.running ? "running" : "stopped";
    const line = `AGENTFIX_AGENT_STATUS=${status} AGENTFIX_AGENT_VERSION=${agent.version ?? ""}`;
    this.counters.verifications++;
    if (status === "running") {
      instance.milestones.verified = this.world.now();
      instance.changed.notify();
    }
    this.world.trace.record({
      at: this.world.now(),
      kind: status === "running" ? "verify.running" : "verify.not-running",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} verification: agent ${status} ${agent.version ?? ""}`.trim(),
    });
    this.invocations.finish(
      invocation,
      status === "running" ? "Success" : "Failed",
      status === "running" ? "Success" : "Failed",
      status === "running" ? 0 : 1,
      `${line}\n`,
      "",
    );
  }
}
