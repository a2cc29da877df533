import type { AgentState, Instance } from "./instances.js";
import { compareVersions } from "./random.js";
import type { WorldServices } from "./services.js";

/**
 * The CodeDeploy agent process on the instances. Distributor installs it (removing the one that ran),
 * faults crash it, EC2 takes it down with its instance. CodeDeploy sees it only through the
 * `agent.started` and `agent.stopped` world events, and through the instance's state.
 */
export class CodeDeployAgents {
  constructor(private readonly world: WorldServices) {
    world.events.on("instance.terminating", ({ instance }) => this.shutDown(instance));
  }

  /**
   * "Uninstall and reinstall" removes the agent first: a running one stops now. Its ongoing-deployment
   * file lives in the deployment root, not in the package, and stays until an agent starts again.
   */
  remove(instance: Instance): void {
    const wasRunning = instance.agent.running;
    const { ongoingDeployment } = instance.agent;
    instance.agent = {
      package: null,
      version: null,
      running: false,
      ...(ongoingDeployment ? { ongoingDeployment } : {}),
    };
    instance.changed.notify();
    if (wasRunning) this.world.events.emit("agent.stopped", { instance, reason: "restart" });
  }

  /**
   * An install put `agent` on the instance; it runs unless the install left it stopped. An agent that
   * starts fails the event an earlier one left unfinished and cleans its ongoing-deployment directory
   * (command_poller.rb, recover_from_crash?); one that does not start leaves the directory as it was.
   */
  install(instance: Instance, agent: AgentState): void {
    const { ongoingDeployment } = instance.agent;
    instance.agent = agent.running || !ongoingDeployment ? agent : { ...agent, ongoingDeployment };
    instance.milestones.installed = this.world.now();
    instance.changed.notify();
    if (!agent.running) return;
    this.world.events.emit("agent.started", { instance });
    this.scheduleCrash(instance);
  }

  /** `systemctl start codedeploy-agent` / `Start-Service`: an installed agent that can run starts. */
  start(instance: Instance): void {
    const agent = instance.agent;
    if (agent.running || agent.package === null || agent.broken) return;
    // A start fails the event an earlier agent left unfinished and cleans its directory, as install does.
    const { ongoingDeployment: _left, ...started } = agent;
    instance.agent = { ...started, running: true };
    instance.changed.notify();
    this.world.events.emit("agent.started", { instance });
    this.scheduleCrash(instance);
  }

  /** The agent starts a lifecycle event of `deploymentId`: it writes the event's ongoing-deployment file. */
  beginLifecycleEvent(instance: Instance, deploymentId: string): void {
    // In place: the agent's identity marks one process run (scheduleCrash).
    instance.agent.ongoingDeployment = { deploymentId, since: this.world.now() };
  }

  /**
   * The event of `deploymentId` ended: the agent deletes its file, or, after a restart, the new agent
   * fails the event and cleans the directory.
   */
  endLifecycleEvent(instance: Instance, deploymentId: string): void {
    if (instance.agent.ongoingDeployment?.deploymentId !== deploymentId) return;
    delete instance.agent.ongoingDeployment;
  }

  /** The agent process dies (nothing restarts it); its ongoing-deployment file stays behind. */
  crash(instance: Instance): void {
    if (!instance.agent.running) return;
    instance.agent = { ...instance.agent, running: false };
    instance.changed.notify();
    this.world.events.emit("agent.stopped", { instance, reason: "shutdown" });
    this.world.trace.record({
      at: this.world.now(),
      kind: "agent.crashed",
      instanceId: instance.id,
      groupName: instance.groupName ?? undefined,
      message: `${instance.id} CodeDeploy agent ${instance.agent.version} stopped on its own`,
    });
  }

  /** An agent with a crash fault stops on its own a while after it started. */
  private scheduleCrash(instance: Instance): void {
    const after = instance.faults.agentCrashAfterSeconds;
    if (after === undefined) return;
    const started = instance.agent;
    this.world.scheduler.after(after * 1000, () => {
      if (instance.agent === started) this.crash(instance);
    });
  }

  /** EC2 shutting down takes the agent with it. */
  private shutDown(instance: Instance): void {
    if (!instance.agent.running) return;
    instance.agent = { ...instance.agent, running: false };
    this.world.events.emit("agent.stopped", { instance, reason: "shutdown" });
  }
}

export function isAgentCurrent(instance: Instance, minimumVersion: string): boolean {
  return (
    instance.agent.running &&
    instance.agent.version !== null &&
    compareVersions(instance.agent.version, minimumVersion) >= 0
  );
}
