// The shapes of the side-by-side and scaling figures, shared by the report and its sections.
import type { Alternative, AlternativeResult, FaultModel } from "./side-by-side.js";

export type Comparison = Record<Alternative, AlternativeResult> & {
  agentWaitSeconds: number;
  ratios: Ratios;
};

export interface SideBySide extends Comparison {
  instances: number;
  seed: number | string;
  faults: FaultModel;
  /** The same comparison under each of CodeDeploy's documented waits for an absent agent. */
  byAgentWait: Comparison[];
}

export interface Ratios {
  /** SSM calls per instance, per-instance polling over this service. */
  ssmCallsPerInstancePollingOverService: number | null;
  /** The same, counting only calls about instances still alive (as asked, before SDK retries). */
  ssmCallsPerInstanceOnLiveInstancesPollingOverService: number | null;
  /** Share of failed launch deployments, association only over this service (null when the service had none). */
  launchDeploymentsFailedAssociationOverService: number | null;
  /** Instances replaced, association only over this service. */
  replacedAssociationOverService: number | null;
}

export interface ScalingPoint {
  instances: number;
  ssmCalls: number;
  ssmCallsPerInstance: number;
  autoScalingCallsPerInstance: number;
  /** As the callers asked for them, before the SDK's retries of throttled calls. */
  ssmCallsAskedPerInstance: number;
  p95Seconds: number;
  p50Seconds: number;
  awsSeconds: number;
  realSeconds: number;
}
