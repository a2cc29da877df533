// What the launch path takes in (one request per instance, from an event, a replay or the sweep), what
// one step of it is given besides (StepContext) and what it reports per instance.
import type { CommandSignal } from "../../schemas/command-event.js";
import type { RecordStore } from "./records.js";

/** What the launch path is given at once: launches to work on, and installs whose end SSM signalled. */
export interface LaunchWork {
  requests: readonly LaunchRequest[];
  signals: readonly CommandSignal[];
}

/** One instance to reconcile, from an event, a replay or the sweep. */
export interface LaunchRequest {
  instanceId: string;
  group: string;
  /** Absent on replay: resolved from the group's hooks. */
  hook?: string;
  token?: string;
  transition?: string;
  origin?: string;
  destination?: string;
  /** AWS-time ms when the lifecycle action started, when known (the event's time). */
  startedAt?: number;
  source: "event" | "replay" | "sweep";
  /** Nothing to do once the launch's event came (its record has the token): the sweep's look-ahead. */
  ifEventLost?: boolean;
  /** The hook's heartbeat timeout, once the hook is resolved. */
  heartbeatTimeoutSeconds?: number;
}

export interface LaunchOutcome {
  instanceId: string;
  autoScalingGroupName: string;
  lifecycleHookName?: string;
  outcome: "CONTINUE" | "ABANDON" | "ALREADY_COMPLETED" | "SKIPPED" | "PENDING";
  reason: string;
  agentVersion?: string;
  elapsedSeconds: number;
  installCommandIds?: string[];
  /** An agent that could not be verified: the instance's own fault, or the service's (SSM, Distributor, us). */
  fault?: "instance" | "service";
  /** The instance started an outdated agent at boot: its AMI bakes one in (and what to do about it). */
  bakedAgent?: {
    imageId?: string;
    launchTemplate?: string;
    /** The agent the AMI starts at boot, and the version it should be at. */
    agentVersion: string;
    expectedVersion: string;
    fix: string;
  };
}

/** What one step of the launch path is given besides its input (step.ts). */
export interface StepContext {
  store: RecordStore;
  now: () => number;
  /** AWS-time ms by which the step's work must stop (the Lambda deadline minus a reserve). */
  deadline: number;
  /** When the invocation ends for good (its Lambda timeout): the steps it takes are its own until then. */
  heldUntil: number;
  correlationId: string;
  /** Run until done: installs are followed every poll interval instead of waiting for their events. */
  follow?: boolean;
  /** A later step of a run until done: launches it finished meanwhile are reported as they ended. */
  continuing?: boolean;
}

export interface Stepped {
  instances: LaunchOutcome[];
  /** When each unfinished launch is next due, in seconds from now. */
  resumeAfterSeconds: Map<string, number>;
  /**
   * Launches whose command events come back when they are next due: their signalled end was not read
   * yet, or was read and their completion is still to come.
   */
  unread: Set<string>;
}
