// Never restart an agent under a deployment. Upgrading the agent restarts it, and a restart fails the
// lifecycle event in progress ("Failing in-progress lifecycle event after an agent restart",
// https://github.com/aws/aws-codedeploy-agent/issues/402). Instances that an active deployment of the
// group covers are left alone from the start, and while the agents are being checked and installed the
// group is looked at again before each round: a deployment that starts meanwhile (an automatic
// rollback created after the failure, a launch deployment, an operator's) stops the work on every
// instance not yet finished.
import { errorMessage } from "../common/errors.js";
import { logger } from "../common/powertools.js";
import { findBusyInstances, listActiveDeployments } from "./targets.js";

export interface LeftAlone {
  instanceId: string;
  reason: string;
}

export class DeploymentGuard {
  private readonly known: ReadonlySet<string>;
  private started: string | undefined;

  private constructor(
    private readonly applicationName: string,
    private readonly deploymentGroupName: string,
    known: Iterable<string>,
  ) {
    this.known = new Set(known);
  }

  /**
   * Looks at the group once: returns the guard and the instances an active deployment covers, each
   * with why it is left alone. While an active deployment's instances are not known yet (it has not
   * started), every instance is left alone.
   */
  static async start(
    applicationName: string,
    deploymentGroupName: string,
    instanceIds: readonly string[],
  ): Promise<{ guard: DeploymentGuard; free: string[]; leftAlone: LeftAlone[] }> {
    const busy = await findBusyInstances(applicationName, deploymentGroupName);
    const free: string[] = [];
    const leftAlone: LeftAlone[] = [];
    for (const instanceId of instanceIds) {
      const pending = busy.unknown[0];
      const running = busy.byInstance.get(instanceId);
      if (!pending && !running) {
        free.push(instanceId);
        continue;
      }
      const why = pending
        ? `deployment ${pending} is about to start in the group and its instances are not known yet`
        : `deployment ${running} is running on it`;
      leftAlone.push({ instanceId, reason: `${why}: restarting its agent now would fail that deployment` });
    }
    const known = [...busy.unknown, ...busy.byInstance.values()];
    const guard = new DeploymentGuard(applicationName, deploymentGroupName, known);
    return { guard, free, leftAlone };
  }

  /**
   * Whether a deployment the guard did not know of is active in the group now: asked before each
   * round and right before installs go out, so every install follows a look at the group.
   */
  async startedMeanwhile(): Promise<boolean> {
    if (this.started) return true;
    try {
      const active = await listActiveDeployments(this.applicationName, this.deploymentGroupName);
      this.started ??= active.find((deploymentId) => !this.known.has(deploymentId));
    } catch (error) {
      // Not known this round; the next round looks again, and the install document itself refuses to
      // restart an agent that runs a lifecycle event.
      logger.warn("Could not look for deployments started in the group", { error: errorMessage(error) });
    }
    return this.started !== undefined;
  }

  /** Why an instance the engine stopped was left alone. */
  stoppedReason(): string {
    return `deployment ${this.started ?? "(unknown)"} started in the group while the agents were being checked: left alone, so that its agent is not restarted under it`;
  }
}
