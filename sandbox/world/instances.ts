import type { AgentPackage } from "../../functions/core/contract.js";
import type { Distribution } from "./random.js";
import { Signal } from "./scheduler.js";

export type Platform = "Linux" | "Windows";

/** The CodeDeploy agent on an instance as the instance itself sees it. */
export interface AgentState {
  package: AgentPackage | null;
  version: string | null;
  running: boolean;
  /**
   * Distributor only knows the installs it made itself: an agent baked into the AMI is reinstalled
   * even at the requested version (amazon-ssm-agent configurepackage.go, checkAlreadyInstalled).
   */
  installedByDistributor?: boolean;
  /** The install left an agent that cannot run (Ruby breakage, aws/aws-codedeploy-agent#321): starting it fails. */
  broken?: boolean;
  /**
   * The lifecycle event the agent runs now, as its `<root_dir>/ongoing-deployment/<deploymentId>`
   * file shows it: written when the agent starts an event and deleted when the event ends
   * (aws-codedeploy-agent command_poller.rb, deployment_command_tracker.rb). A crash leaves it behind
   * until the next agent start fails that event and cleans the directory.
   */
  ongoingDeployment?: { deploymentId: string; since: number };
}

/** What an AMI brings: the platform and the CodeDeploy agent baked into it, if any. */
export interface ImageProfile {
  imageId: string;
  /** Share of instances launched as Windows (0 = all Linux). */
  windowsShare?: number;
  bakedAgent?: { package?: AgentPackage; version: string; running: boolean } | null;
  /**
   * Share of the group's launches that come up with `bakedAgent` (default 1: all of them); the others
   * come up without an agent. A group whose launch template versions or mixed-instances overrides
   * point at more than one AMI, only some of them with an agent baked in.
   */
  bakedAgentShare?: number;
  /** AWS seconds from launch until the SSM Agent registers and reports Online. */
  registrationDelaySeconds?: Distribution;
  /** Probability that the SSM Agent never registers (missing instance profile, no route to SSM). */
  neverRegistersProbability?: number;
}

/** Per-instance fault overrides; undefined falls back to the world's probabilities. */
export interface InstanceFaults {
  installFailureProbability?: number;
  installSucceedsWithoutAgentProbability?: number;
  /** The agent dies this many AWS seconds after each start (a crash loop, e.g. a missing Ruby). */
  agentCrashAfterSeconds?: number;
  /** The agent runs (and verifies) but dies as soon as it starts a lifecycle event. */
  agentCrashesOnLifecycleEvent?: boolean;
}

export type Milestone =
  | "launched"
  | "pendingWait"
  | "ssmOnline"
  | "installSent"
  | "installed"
  /** The last time a verification (or a skip-if-current probe) found the agent running at the expected version. */
  | "verified"
  /** The first such time: when the instance first had a verified agent (the launch's time to verified). */
  | "firstVerified"
  | "inService"
  | "abandoned"
  /** Auto Scaling began to terminate it (Terminating); `terminated` is when EC2 was done. */
  | "terminating"
  | "terminated"
  /** Stopped in its group's warm pool, prepared (Warmed:Stopped, or Warmed:Running / Hibernated). */
  | "warmed"
  /** Started again to leave the warm pool for the group. */
  | "leftWarmPool";

export interface Instance {
  id: string;
  groupName: string | null;
  platform: Platform;
  imageId: string;
  instanceType: string;
  availabilityZone: string;
  launchedAt: number;
  /** Auto Scaling lifecycle state (`Pending`, `Pending:Wait`, `InService`, `Warmed:Stopped`, ...). */
  lifecycleState: string;
  /**
   * EC2's own state: a warm pool stops its prepared instances (or hibernates them). A stopped instance
   * runs nothing: Run Command cannot reach it and DescribeInstanceInformation leaves it out.
   */
  ec2State: "running" | "stopped";
  terminated: boolean;
  ssm: { registersAt: number | null; registeredAt: number | null; agentVersion: string };
  agent: AgentState;
  faults: InstanceFaults;
  milestones: Partial<Record<Milestone, number>>;
  abandonReason?: string;
  /** Woken on every change of lifecycle state, registration or agent state. */
  changed: Signal;
}

export const SSM_AGENT_VERSION = "3.3.1957.0";

/**
 * Every instance the world knows, in launch order, terminated ones included: a model that answers for
 * instances filters what its API shows (SSM leaves out terminated nodes, CodeDeploy takes InService
 * ones).
 */
export class InstanceRegistry {
  private readonly byId = new Map<string, Instance>();
  private readonly byGroup = new Map<string, Instance[]>();
  private readonly ordinals = new Map<string, number>();

  /** Every instance by id. */
  get all(): ReadonlyMap<string, Instance> {
    return this.byId;
  }

  get(id: string): Instance {
    const instance = this.byId.get(id);
    if (!instance) throw new RangeError(`no instance ${id} in the sandbox world`);
    return instance;
  }

  find(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  add(instance: Instance): void {
    this.byId.set(instance.id, instance);
    if (instance.groupName === null) return;
    const ofGroup = this.byGroup.get(instance.groupName) ?? [];
    ofGroup.push(instance);
    this.byGroup.set(instance.groupName, ofGroup);
  }

  /**
   * The instances of an Auto Scaling group, as their `aws:autoscaling:groupName` tag names it, in
   * launch order: what a target or filter on that tag finds (terminated ones too; callers filter).
   */
  inGroup(groupName: string): readonly Instance[] {
    return this.byGroup.get(groupName) ?? [];
  }

  /** 1, 2, 3... per key: numbers the launches whose random streams are named after them. */
  nextOrdinal(key: string): number {
    const next = (this.ordinals.get(key) ?? 0) + 1;
    this.ordinals.set(key, next);
    return next;
  }
}

export function createInstance(fields: {
  id: string;
  groupName: string | null;
  platform: Platform;
  imageId: string;
  availabilityZone: string;
  launchedAt: number;
  agent: AgentState;
  lifecycleState: string;
  faults?: InstanceFaults;
}): Instance {
  return {
    ...fields,
    instanceType: fields.platform === "Windows" ? "m5.large" : "t3.medium",
    ec2State: "running",
    terminated: false,
    ssm: { registersAt: null, registeredAt: null, agentVersion: SSM_AGENT_VERSION },
    faults: fields.faults ?? {},
    milestones: { launched: fields.launchedAt },
    changed: new Signal(),
  };
}
