import { CODEDEPLOY_HOOK_PREFIX, LAUNCH_TRANSITION } from "../../../functions/core/contract.js";
import type { Instance } from "../instances.js";
import type { LifecycleAction, LifecycleResult } from "../lifecycle-action.js";
import type { TimerHandle } from "../scheduler.js";
import { AwsServiceError } from "../service-error.js";
import type { WorldServices } from "../services.js";
import type { AutoScalingApi } from "./auto-scaling-api.js";
import { accountAtLimit, concurrentDeploymentLimit } from "./quota.js";
import type { CodeDeployOptions, Deployment, DeploymentGroup } from "./records.js";
import type { CodeDeployRegistry } from "./registry.js";
import type { DeploymentRunner } from "./runner.js";

/**
 * CodeDeploy's managed launch hook: CreateDeploymentGroup puts it on each Auto Scaling group; when it
 * holds a new instance, CodeDeploy deploys the group's last successful revision there (creator
 * `autoscaling`), heartbeats the hook while that runs, and completes it CONTINUE or ABANDON.
 * https://docs.aws.amazon.com/codedeploy/latest/userguide/integrations-aws-auto-scaling.html
 */
export class LaunchHook {
  private readonly heartbeats = new Map<string, TimerHandle>();

  constructor(
    private readonly world: WorldServices,
    private readonly registry: CodeDeployRegistry,
    private readonly runner: DeploymentRunner,
    private readonly autoScaling: AutoScalingApi,
    private readonly options: CodeDeployOptions,
  ) {
    world.events.on("lifecycle-action.started", ({ action, instance }) =>
      this.onLaunchAction(action, instance),
    );
    runner.onRunning((deployment) => this.keepAlive(deployment));
    runner.onCompleted((deployment, error) => this.release(deployment, error ? "ABANDON" : "CONTINUE"));
  }

  /** Puts the hook of a new deployment group on each of its Auto Scaling groups. */
  install(group: DeploymentGroup): void {
    for (const asg of group.autoScalingGroups) {
      this.autoScaling.putLifecycleHook({
        groupName: asg,
        hookName: `${CODEDEPLOY_HOOK_PREFIX}${group.name}`,
        transition: LAUNCH_TRANSITION,
        heartbeatTimeout: this.options.managedHookHeartbeatTimeout ?? 600,
        defaultResult: "ABANDON",
      });
    }
  }

  private onLaunchAction(action: LifecycleAction, instance: Instance): void {
    if (!action.hookName.startsWith(CODEDEPLOY_HOOK_PREFIX)) return;
    const groupName = action.hookName.slice(CODEDEPLOY_HOOK_PREFIX.length);
    const group = [...this.registry.groups.values()].find(
      (candidate) => candidate.name === groupName && candidate.autoScalingGroups.includes(action.groupName),
    );
    const delay = this.world.rng
      .fork(`launch-deployment:${action.token}`)
      .draw(this.options.launchDeploymentDelaySeconds ?? { min: 1, max: 4 });
    this.world.scheduler.after(delay * 1000, () => {
      if (action.completed) return;
      const last = group?.lastSuccessfulDeploymentId
        ? this.registry.deployments.get(group.lastSuccessfulDeploymentId)
        : undefined;
      if (!group || !last?.revision) {
        // Nothing deployed successfully yet: CodeDeploy lets the instance in without a deployment.
        this.complete(action, "CONTINUE");
        return;
      }
      if (accountAtLimit(this.registry, this.options)) {
        this.refuseOverQuota(action, instance);
        return;
      }
      const deployment = this.registry.newDeployment(group, {
        revision: last.revision,
        creator: "autoscaling",
        launchAction: action,
      });
      deployment.targets = [this.registry.newTarget(instance.id)];
      this.runner.start(deployment);
    });
  }

  /**
   * The account runs its quota of concurrent deployments: CodeDeploy cannot create the launch
   * deployment, so nothing heartbeats or completes its hook, which runs out and takes its default
   * result, ABANDON ("Heartbeat Timeout"). The knowledge center names this quota among the causes of
   * lifecycle actions that never complete: https://repost.aws/knowledge-center/lifecycle-actions-code-deploy
   */
  private refuseOverQuota(action: LifecycleAction, instance: Instance): void {
    this.world.trace.record({
      at: this.world.now(),
      kind: "deployment.limit-exceeded",
      instanceId: instance.id,
      groupName: action.groupName,
      message: `${instance.id}: no launch deployment, the account runs ${concurrentDeploymentLimit(this.options)} concurrent deployments`,
    });
  }

  /** Heartbeats the hook while its launch deployment runs. */
  private keepAlive(deployment: Deployment): void {
    const action = deployment.launchAction;
    if (!action) return;
    const heartbeat = this.world.scheduler.every(
      (this.options.managedHookHeartbeatSeconds ?? 300) * 1000,
      () => {
        if (action.completed) return;
        try {
          this.autoScaling.recordHeartbeat({
            groupName: action.groupName,
            hookName: action.hookName,
            token: action.token,
          });
        } catch (error) {
          if (!(error instanceof AwsServiceError)) throw error;
        }
      },
    );
    this.heartbeats.set(deployment.id, heartbeat);
  }

  /** The launch deployment ended: the heartbeat stops and the hook lets the instance in or abandons it. */
  private release(deployment: Deployment, result: LifecycleResult): void {
    const action = deployment.launchAction;
    if (!action) return;
    this.heartbeats.get(deployment.id)?.cancel();
    this.heartbeats.delete(deployment.id);
    this.complete(action, result);
  }

  private complete(action: LifecycleAction, result: LifecycleResult): void {
    try {
      this.autoScaling.completeLifecycleAction(
        { groupName: action.groupName, hookName: action.hookName, token: action.token, result },
        "codedeploy",
      );
    } catch (error) {
      // The action already ended (timeout, scale-in): nothing left to complete.
      if (!(error instanceof AwsServiceError && error.code === "ValidationError")) throw error;
    }
  }
}
