import type { Instance } from "../instances.js";
import type { WorldServices } from "../services.js";
import { type Deployment, type DeploymentGroup, revisionKey } from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";

/**
 * The harm a service that repairs deployments could do to them, counted as it happens, so that a
 * scenario asserts none and a chaos or bench run can report a `harm` figure:
 * - `blueGreenRedeploys`: deployments requested over the API in a blue/green deployment group (an
 *   in-place style redeploy does not apply there; the rules leave blue/green alone);
 * - `redeploysAgainstRollback`: deployments requested over the API while an automatic rollback was
 *   due or running in the group, or that deploy again a revision a rollback removed;
 * - `agentRestartsUnderDeployment`: agent restarts (an install replacing a running agent) on an
 *   instance that an active deployment still had to deploy to, or was deploying to.
 * Requests over the API come from outside the world (the service's functions, a CLI); the scenarios'
 * own deployments are created on the model directly and never count.
 */
export type HarmKind = "blue-green-redeploy" | "redeploy-against-rollback" | "agent-restart-under-deployment";

export interface HarmEvent {
  kind: HarmKind;
  at: number;
  deploymentId: string;
  instanceId?: string;
  detail: string;
}

export class DeploymentHarm {
  readonly events: HarmEvent[] = [];

  constructor(
    private readonly world: WorldServices,
    private readonly registry: CodeDeployRegistry,
    private readonly rollbackDue: (group: DeploymentGroup) => boolean,
  ) {
    world.events.on("agent.stopped", ({ instance, reason }) => {
      if (reason === "restart") this.onRestart(instance);
    });
  }

  get blueGreenRedeploys(): number {
    return this.count("blue-green-redeploy");
  }

  get redeploysAgainstRollback(): number {
    return this.count("redeploy-against-rollback");
  }

  get agentRestartsUnderDeployment(): number {
    return this.count("agent-restart-under-deployment");
  }

  get total(): number {
    return this.events.length;
  }

  /** The counters, for reports. */
  snapshot() {
    return {
      blueGreenRedeploys: this.blueGreenRedeploys,
      redeploysAgainstRollback: this.redeploysAgainstRollback,
      agentRestartsUnderDeployment: this.agentRestartsUnderDeployment,
      total: this.total,
      events: this.events.map((event) => ({ ...event })),
    };
  }

  /** A deployment was requested over the API (it is already in the registry, the newest of its group). */
  onRequested(deployment: Deployment, group: DeploymentGroup): void {
    if (group.deploymentStyle.deploymentType === "BLUE_GREEN") {
      this.note(
        "blue-green-redeploy",
        deployment.id,
        `${deployment.id} created in blue/green group ${group.name}`,
      );
    }
    const rollback = this.rollbackAgainst(deployment, group);
    if (rollback) this.note("redeploy-against-rollback", deployment.id, rollback);
  }

  private rollbackAgainst(deployment: Deployment, group: DeploymentGroup): string | undefined {
    if (this.rollbackDue(group)) return `${deployment.id} created while a rollback was due in ${group.name}`;
    const ofGroup = [...this.registry.deployments.values()].filter(
      (other) =>
        other.id !== deployment.id &&
        other.applicationName === group.applicationName &&
        other.deploymentGroupName === group.name,
    );
    const running = ofGroup.find(
      (other) => other.creator === "codeDeployRollback" && this.registry.active().includes(other),
    );
    if (running) return `${deployment.id} created while rollback ${running.id} ran in ${group.name}`;
    const key = revisionKey(deployment.revision);
    const undone = ofGroup.find(
      (other) => other.rollbackInfo?.rollbackDeploymentId && revisionKey(other.revision) === key,
    );
    return undone
      ? `${deployment.id} deploys again the revision of ${undone.id}, which rollback ${undone.rollbackInfo?.rollbackDeploymentId} removed`
      : undefined;
  }

  private onRestart(instance: Instance): void {
    for (const deployment of this.registry.active()) {
      const target = deployment.targets.find((candidate) => candidate.instanceId === instance.id);
      if (!target || (target.status !== "Pending" && target.status !== "InProgress")) continue;
      this.note(
        "agent-restart-under-deployment",
        deployment.id,
        `the agent on ${instance.id} restarted while ${deployment.id} (${deployment.creator}) had it ${target.status}`,
        instance.id,
      );
    }
  }

  private note(kind: HarmKind, deploymentId: string, detail: string, instanceId?: string): void {
    const at = this.world.now();
    this.events.push({ kind, at, deploymentId, detail, ...(instanceId ? { instanceId } : {}) });
    this.world.trace.record({
      at,
      kind: `harm.${kind}`,
      deploymentId,
      instanceId,
      message: `harm: ${detail}`,
    });
  }

  private count(kind: HarmKind): number {
    return this.events.filter((event) => event.kind === kind).length;
  }
}
