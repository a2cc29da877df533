import type { WorldServices } from "../services.js";
import type { CodeDeployOptions, Deployment, DeploymentError, DeploymentGroup } from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";
import type { DeploymentRunner } from "./runner.js";

/**
 * Automatic rollback: when a deployment whose group (or request) enables it for DEPLOYMENT_FAILURE
 * fails, CodeDeploy redeploys the last successful revision to the same instances (creator
 * `codeDeployRollback`), `rollbackDelaySeconds` after the failure. Launch deployments and rollbacks
 * themselves are not rolled back, and nothing is when no revision deployed successfully before.
 * https://docs.aws.amazon.com/codedeploy/latest/userguide/deployments-rollback-and-redeploy.html
 */
export class AutomaticRollback {
  /** Groups whose failed deployment's rollback is scheduled but not created yet. */
  private readonly due = new Set<DeploymentGroup>();

  constructor(
    private readonly world: WorldServices,
    private readonly registry: CodeDeployRegistry,
    private readonly runner: DeploymentRunner,
    private readonly options: CodeDeployOptions,
  ) {
    runner.onCompleted((deployment, error) => this.onCompleted(deployment, error));
  }

  /** A rollback of the group is scheduled and not created yet. */
  isDue(group: DeploymentGroup): boolean {
    return this.due.has(group);
  }

  private onCompleted(deployment: Deployment, error: DeploymentError | undefined): void {
    const group = this.registry.groupOf(deployment);
    const rollback = deployment.autoRollbackConfiguration;
    const previous = group.lastSuccessfulDeploymentId
      ? this.registry.deployments.get(group.lastSuccessfulDeploymentId)
      : undefined;
    if (
      !error ||
      !rollback?.enabled ||
      !rollback.events.includes("DEPLOYMENT_FAILURE") ||
      deployment.creator === "codeDeployRollback" ||
      deployment.creator === "autoscaling" ||
      !previous?.revision
    )
      return;
    const revision = previous.revision;
    const delay = this.options.rollbackDelaySeconds;
    if (delay === undefined) {
      this.rollBack(deployment, group, revision);
      return;
    }
    this.due.add(group);
    const seconds = this.world.rng.fork(`rollback:${deployment.id}`).draw(delay);
    this.world.scheduler.after(seconds * 1000, () => {
      this.due.delete(group);
      this.rollBack(deployment, group, revision);
    });
  }

  private rollBack(deployment: Deployment, group: DeploymentGroup, revision: Deployment["revision"]): void {
    const rollbackDeployment = this.registry.newDeployment(group, {
      revision: revision!,
      creator: "codeDeployRollback",
      rollbackInfo: { rollbackTriggeringDeploymentId: deployment.id },
    });
    deployment.rollbackInfo = {
      rollbackDeploymentId: rollbackDeployment.id,
      rollbackMessage: `Automatic rollback triggered: deployment ${deployment.id} failed.`,
    };
    rollbackDeployment.targets = deployment.targets.map((target) =>
      this.registry.newTarget(target.instanceId),
    );
    this.runner.start(rollbackDeployment);
  }
}
