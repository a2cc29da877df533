import type { CodeDeployAgents } from "../agent.js";
import type { Distribution } from "../random.js";
import type { WorldServices } from "../services.js";
import type { AutoScalingApi } from "./auto-scaling-api.js";
import { DeploymentRequests } from "./deployments.js";
import { DeploymentHarm } from "./harm.js";
import { LaunchHook } from "./launch-hook.js";
import type {
  Application,
  CodeDeployOptions,
  CreateDeploymentInput,
  Deployment,
  DeploymentGroup,
  LifecycleEventName,
  RevisionLocation,
} from "./records.js";
import { CodeDeployRegistry } from "./registry.js";
import { AutomaticRollback } from "./rollback.js";
import { DeploymentRunner } from "./runner.js";

/**
 * CodeDeploy for EC2/on-premises in-place deployments: applications, deployment groups and
 * deployments (registry.ts, deployments.ts), deployments run on the instances' agents (runner.ts,
 * deployment-configs.ts, diagnostics.ts), the managed launch hook on Auto Scaling groups
 * (launch-hook.ts), automatic rollback (rollback.ts), and the harm a remediation could do to all
 * of it (harm.ts). It sees the agents through the world's events and reaches Auto Scaling only
 * through the calls AWS makes (auto-scaling-api.ts).
 */
export class CodeDeployModel {
  readonly applications: Map<string, Application>;
  readonly groups: Map<string, DeploymentGroup>;
  readonly deployments: Map<string, Deployment>;
  /** Deployment ids in creation order (ListDeployments answers newest first). */
  readonly order: string[];
  /** Redeploys the rules forbid and agent restarts under a deployment, as they happen. */
  readonly harm: DeploymentHarm;
  private readonly registry: CodeDeployRegistry;
  private readonly runner: DeploymentRunner;
  private readonly requests: DeploymentRequests;

  constructor(
    world: WorldServices,
    agents: CodeDeployAgents,
    autoScaling: AutoScalingApi,
    readonly options: CodeDeployOptions = {},
  ) {
    this.registry = new CodeDeployRegistry(world);
    this.runner = new DeploymentRunner(world, this.registry, agents, options);
    const launchHook = new LaunchHook(world, this.registry, this.runner, autoScaling, options);
    const rollback = new AutomaticRollback(world, this.registry, this.runner, options);
    this.harm = new DeploymentHarm(world, this.registry, (group) => rollback.isDue(group));
    this.requests = new DeploymentRequests(world, this.registry, launchHook, this.runner, this.harm, options);
    this.applications = this.registry.applications;
    this.groups = this.registry.groups;
    this.deployments = this.registry.deployments;
    this.order = this.registry.order;
  }

  get agentWaitMs(): number {
    return this.runner.agentWaitMs;
  }

  get fixedInAgentVersion(): string {
    return this.runner.fixedInAgentVersion;
  }

  createApplication(name: string): Application {
    return this.registry.createApplication(name);
  }

  application(name: string | undefined): Application {
    return this.registry.application(name);
  }

  createDeploymentGroup(spec: Parameters<DeploymentRequests["createDeploymentGroup"]>[0]): DeploymentGroup {
    return this.requests.createDeploymentGroup(spec);
  }

  deploymentGroup(applicationName: string | undefined, groupName: string | undefined): DeploymentGroup {
    return this.registry.deploymentGroup(applicationName, groupName);
  }

  /** Makes deployments of this revision fail their ValidateService script (an application bug). */
  markRevisionBroken(revision: RevisionLocation): void {
    this.registry.markRevisionBroken(revision);
  }

  /** Makes deployments of this revision take this long in these lifecycle events (a large bundle). */
  markRevisionSlow(
    revision: RevisionLocation,
    eventSeconds: Partial<Record<LifecycleEventName, Distribution>>,
  ): void {
    this.registry.markRevisionSlow(revision, eventSeconds);
  }

  deployment(id: string | undefined): Deployment {
    return this.registry.deployment(id);
  }

  /** Deployments not finished yet (Created, Queued, InProgress...), for cheap "anything running?" checks. */
  active(): Deployment[] {
    return this.registry.active();
  }

  activeDeployment(group: DeploymentGroup): Deployment | undefined {
    return this.registry.activeDeployment(group);
  }

  /** CreateDeployment; `id` forces the deployment id (a replay of a real deployment's events). */
  createDeployment(input: CreateDeploymentInput, creator = "user", id?: string): Deployment {
    return this.requests.createDeployment(input, creator, id);
  }

  /** CreateDeployment as it arrives over the API (from the service or a CLI): counted for harm. */
  requestDeployment(input: CreateDeploymentInput): Deployment {
    return this.requests.createDeployment(input, "user", undefined, { viaApi: true });
  }
}
