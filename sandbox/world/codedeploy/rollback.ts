import type { Deployment, DeploymentError } from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";
import type { DeploymentRunner } from "./runner.js";

/**
 * Automatic rollback: when a deployment whose group (or request) enables it for DEPLOYMENT_FAILURE
 * fails, CodeDeploy redeploys the last successful revision to the same instances (creator
 * `codeDeployRollback`). Launch deployments and rollbacks themselves are not rolled back.
 * https://docs.aws.amazon.com/codedeploy/latest/userguide/deployments-rollback-and-redeploy.html
 */
export class AutomaticRollback {
  constructor(
    private readonly registry: CodeDeployRegistry,
    private readonly runner: DeploymentRunner,
  ) {
    runner.onCompleted((deployment, error) => this.onCompleted(deployment, error));
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
    const rollbackDeployment = this.registry.newDeployment(group, {
      revision: previous.revision,
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
