import type { CodeDeployAgents } from "../agent.js";
import type { Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import { deploysOneAtATime } from "./deployment-configs.js";
import {
  AGENT_NOT_RECEIVING_MESSAGE,
  AGENT_RESTART_MESSAGE,
  DEFAULT_EVENT_SECONDS,
  type EventOutcome,
  failWithoutAgent,
  HEALTH_CONSTRAINTS_MESSAGE,
  runScripts,
} from "./diagnostics.js";
import type {
  CodeDeployOptions,
  Deployment,
  DeploymentError,
  DeploymentTarget,
  LifecycleEventRecord,
} from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";

interface RunningEvent {
  interrupt(reason: "restart" | "shutdown"): void;
}

/**
 * Runs deployments: each target's lifecycle events in turn, each picked up by the instance's running
 * agent within CodeDeploy's wait, interrupted when the agent stops; then the deployment's end. Whoever
 * acts on a deployment that starts running or ends (the launch hook, automatic rollback) subscribes.
 */
export class DeploymentRunner {
  private readonly running = new Map<string, RunningEvent>();
  private readonly runningListeners = new Set<(deployment: Deployment) => void>();
  private readonly completedListeners = new Set<(deployment: Deployment, error?: DeploymentError) => void>();

  constructor(
    private readonly world: WorldServices,
    private readonly registry: CodeDeployRegistry,
    private readonly agents: CodeDeployAgents,
    private readonly options: CodeDeployOptions,
  ) {
    // An agent that starts picks up the pending event: wake the waits on its instance.
    world.events.on("agent.started", ({ instance }) => instance.changed.notify());
    // A restart fails the running event at once; a shutdown leaves it to CodeDeploy's wait.
    world.events.on("agent.stopped", ({ instance, reason }) =>
      this.running.get(instance.id)?.interrupt(reason),
    );
  }

  get agentWaitMs(): number {
    return (this.options.agentWaitSeconds ?? 300) * 1000;
  }

  get fixedInAgentVersion(): string {
    return this.options.fixedInAgentVersion ?? "1.8.1";
  }

  onRunning(listener: (deployment: Deployment) => void): void {
    this.runningListeners.add(listener);
  }

  onCompleted(listener: (deployment: Deployment, error?: DeploymentError) => void): void {
    this.completedListeners.add(listener);
  }

  start(deployment: Deployment): void {
    const delay = this.world.rng.fork(`start:${deployment.id}`).draw({ min: 0.5, max: 2 }) * 1000;
    this.world.scheduler.after(delay, () => this.world.scheduler.run(() => this.run(deployment)));
  }

  private async run(deployment: Deployment): Promise<void> {
    const group = this.registry.groupOf(deployment);
    deployment.status = "InProgress";
    deployment.startTime = this.world.now();
    group.lastAttemptedDeploymentId = deployment.id;
    this.registry.publish(deployment, "START");
    for (const listener of this.runningListeners) listener(deployment);
    if (deployment.targets.length === 0) {
      this.complete(deployment, {
        code: "NO_INSTANCES",
        message:
          "The deployment failed because no instances were found for your deployment group. Check your deployment group settings to make sure the tags for your Amazon EC2 instances or Auto Scaling groups correctly identify the instances you want to deploy to, and then try again.",
      });
      return;
    }
    if (deploysOneAtATime(deployment.deploymentConfigName)) {
      for (const target of deployment.targets) {
        const status = await this.runTarget(deployment, target);
        if (status === "Failed") {
          for (const rest of deployment.targets) if (rest.status === "Pending") this.skipTarget(rest);
          break;
        }
      }
    } else {
      await Promise.all(deployment.targets.map((target) => this.runTarget(deployment, target)));
    }
    const failed = deployment.targets.some((target) => target.status === "Failed");
    this.complete(
      deployment,
      failed ? { code: "HEALTH_CONSTRAINTS", message: HEALTH_CONSTRAINTS_MESSAGE } : undefined,
    );
  }

  private skipTarget(target: DeploymentTarget): void {
    target.status = "Skipped";
    target.lastUpdatedAt = this.world.now();
    for (const event of target.lifecycleEvents) event.status = "Skipped";
  }

  private agentRunning(instance: Instance): boolean {
    return !instance.terminated && instance.agent.running;
  }

  private async runTarget(
    deployment: Deployment,
    target: DeploymentTarget,
  ): Promise<DeploymentTarget["status"]> {
    const instance = this.world.instances.get(target.instanceId);
    const rng = this.world.rng.fork(`target:${deployment.id}:${instance.id}`);
    target.status = "InProgress";
    target.lastUpdatedAt = this.world.now();
    this.registry.publish(deployment, "START", instance.id);
    for (const [index, event] of target.lifecycleEvents.entries()) {
      // The clock for an event starts when the previous one ends (limits page: five minutes).
      const waitDeadline = this.world.now() + this.agentWaitMs;
      let outcome: EventOutcome | undefined;
      while (!outcome) {
        const picked = await instance.changed.waitFor(
          this.world.scheduler,
          () => this.agentRunning(instance),
          Math.max(0, waitDeadline - this.world.now()),
        );
        if (!picked) {
          outcome = failWithoutAgent(AGENT_NOT_RECEIVING_MESSAGE);
          break;
        }
        await this.world.scheduler.sleep(
          rng.draw(this.options.agentPickupSeconds ?? { min: 1, max: 4 }) * 1000,
        );
        if (!this.agentRunning(instance)) continue;
        outcome = await this.runEvent(
          deployment,
          instance,
          event,
          rng.draw(
            this.registry.eventSecondsOf(deployment.revision, event.lifecycleEventName) ??
              this.options.eventSeconds?.[event.lifecycleEventName] ??
              DEFAULT_EVENT_SECONDS[event.lifecycleEventName],
          ) * 1000,
        );
      }
      event.endTime = this.world.now();
      event.startTime ??= event.endTime;
      event.status = outcome.status;
      event.diagnostics = outcome.diagnostics;
      target.lastUpdatedAt = this.world.now();
      if (outcome.status === "Failed") {
        for (const rest of target.lifecycleEvents.slice(index + 1)) rest.status = "Skipped";
        target.status = "Failed";
        this.world.trace.record({
          at: this.world.now(),
          kind: "deployment.target-failed",
          deploymentId: deployment.id,
          instanceId: instance.id,
          groupName: instance.groupName ?? undefined,
          message: `${deployment.id} on ${instance.id}: ${event.lifecycleEventName} ${outcome.diagnostics.errorCode}: ${outcome.diagnostics.message}`,
          data: { lifecycleEvent: event.lifecycleEventName, errorCode: outcome.diagnostics.errorCode },
        });
        this.registry.publish(deployment, "FAILURE", instance.id);
        return target.status;
      }
    }
    target.status = "Succeeded";
    this.registry.recordRevision(instance.id, deployment.revision);
    this.registry.publish(deployment, "SUCCESS", instance.id);
    return target.status;
  }

  private async runEvent(
    deployment: Deployment,
    instance: Instance,
    event: LifecycleEventRecord,
    durationMs: number,
  ): Promise<EventOutcome> {
    event.status = "InProgress";
    event.startTime = this.world.now();
    // The agent tracks the event in its ongoing-deployment directory while it runs; a restart or a
    // crash leaves the file for the next agent start to clean up (agent.ts).
    this.agents.beginLifecycleEvent(instance, deployment.id);
    if (instance.faults.agentCrashesOnLifecycleEvent) {
      this.world.scheduler.after(1000, () => this.agents.crash(instance));
    }
    const agentVersion = instance.agent.version ?? "0";
    const interruption = await new Promise<"done" | "restart" | "shutdown">((resolve) => {
      const timer = this.world.scheduler.after(durationMs, () => {
        this.running.delete(instance.id);
        this.agents.endLifecycleEvent(instance, deployment.id);
        resolve("done");
      });
      this.running.set(instance.id, {
        interrupt: (reason) => {
          timer.cancel();
          this.running.delete(instance.id);
          resolve(reason);
        },
      });
    });
    if (interruption === "restart") return failWithoutAgent(AGENT_RESTART_MESSAGE);
    if (interruption === "shutdown") {
      // The agent went away mid-event: CodeDeploy only notices when its wait for the agent runs out.
      await this.world.scheduler.sleep(this.agentWaitMs);
      return failWithoutAgent(AGENT_NOT_RECEIVING_MESSAGE);
    }
    return runScripts(event.lifecycleEventName, {
      agentVersion,
      fixedInAgentVersion: this.fixedInAgentVersion,
      revisionBroken: this.registry.isRevisionBroken(deployment.revision),
    });
  }

  private complete(deployment: Deployment, error?: DeploymentError): void {
    const group = this.registry.groupOf(deployment);
    deployment.completeTime = this.world.now();
    deployment.status = error ? "Failed" : "Succeeded";
    this.registry.markFinished(deployment);
    deployment.errorInformation = error;
    if (!error) group.lastSuccessfulDeploymentId = deployment.id;
    this.world.trace.record({
      at: this.world.now(),
      kind: error ? "deployment.failed" : "deployment.succeeded",
      deploymentId: deployment.id,
      message: `${deployment.id} (${deployment.creator}) ${deployment.status}${error ? `: ${error.code}` : ""}`,
      data: {
        creator: deployment.creator,
        description: deployment.description,
        group: `${deployment.applicationName}/${deployment.deploymentGroupName}`,
      },
    });
    this.registry.publish(deployment, error ? "FAILURE" : "SUCCESS");
    for (const listener of this.completedListeners) listener(deployment, error);
  }
}
