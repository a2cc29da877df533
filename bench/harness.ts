import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { clock } from "../functions/core/common/clock.js";
import { invocationScope } from "../sandbox/runtime/instrument.js";
import type { LambdaFunction } from "../sandbox/runtime/lambda.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { HarmFigures, HarmRecords } from "../sandbox/scenarios/harm-watch.js";
import type { Queue } from "../sandbox/world/sqs.js";
import type { World } from "../sandbox/world/world.js";

/**
 * What every benchmark run shares: reproducible jitter, a measure of how faithful the compressed clock
 * stayed, a generic "nothing left to happen" wait, and a tally of SSM calls by what they were for.
 */

/**
 * The handlers and the SDK draw their jitter from Math.random. A benchmark replaces it with a seeded
 * generator (mulberry32) for the length of a run, so that a seed repeats a run as far as real-time
 * scheduling allows.
 */
export function seedMathRandom(seed: number | string): () => void {
  const original = Math.random;
  let state = hashSeed(String(seed));
  Math.random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return () => {
    Math.random = original;
  };
}

function hashSeed(text: string): number {
  let hash = 2_166_136_261;
  for (const char of text) hash = Math.imul(hash ^ char.charCodeAt(0), 16_777_619);
  return hash >>> 0;
}

/**
 * The sandbox runs AWS time on a scaled wall clock, in the same process as the handlers. When the
 * process is busy, everything (the handlers' calls, the world's timers) runs late by the event loop's
 * delay, which the scaled clock turns into AWS seconds. The 99th percentile of that delay, in AWS
 * seconds, says how far a run's timings can be off; it is reported next to every run.
 */
export interface RunClock {
  stop(): { realSeconds: number; eventLoopDelayP99Seconds: number };
}

export function startRunClock(clockScale: number): RunClock {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const started = performance.now();
  return {
    stop() {
      histogram.disable();
      // The histogram measures the delay beyond its own 10 ms sampling period.
      const delayMs = Math.max(0, histogram.percentile(99) / 1e6 - 10);
      return {
        realSeconds: round((performance.now() - started) / 1000, 1),
        eventLoopDelayP99Seconds: round(delayMs / clockScale / 1000, 2),
      };
    },
  };
}

/**
 * Waits until nothing is left to happen in `groups`: no deployment running in their deployment
 * groups, no instance launching or terminating, every group at its desired capacity, no function
 * busy and no queue holding messages; held for `quietSeconds` AWS seconds. False when `timeoutSeconds`
 * ran out first (the figures are then those of an unfinished run, and say so).
 */
export async function waitUntilSettled(
  sandbox: Sandbox,
  scope: { groups: string[]; deploymentGroups: string[]; functions: LambdaFunction[]; queues: Queue[] },
  options: { quietSeconds: number; timeoutSeconds: number },
): Promise<boolean> {
  const { world } = sandbox;
  const busy = () => {
    const deploying = [...world.codeDeploy.deployments.values()].some(
      (deployment) =>
        scope.deploymentGroups.includes(`${deployment.applicationName}/${deployment.deploymentGroupName}`) &&
        !["Succeeded", "Failed", "Stopped"].includes(deployment.status),
    );
    if (deploying) return true;
    for (const name of scope.groups) {
      const group = world.autoScaling.group(name);
      const live = world.autoScaling.liveInstances(group);
      if (live.length !== group.desiredCapacity) return true;
      for (const id of group.instances) {
        const instance = world.instance(id);
        if (!instance.terminated && /^(Pending|Terminating)/.test(instance.lifecycleState)) return true;
      }
    }
    return (
      scope.functions.some((fn) => fn.inFlight > 0 || fn.pendingEvents > 0) ||
      scope.queues.some((queue) => queue.messages.length > 0)
    );
  };
  const deadline = clock.now() + options.timeoutSeconds * 1000;
  let quietSince: number | undefined;
  while (clock.now() < deadline) {
    if (busy()) quietSince = undefined;
    else {
      quietSince ??= clock.now();
      if (clock.now() - quietSince >= options.quietSeconds * 1000) return true;
    }
    await clock.sleep(5_000);
  }
  return false;
}

/**
 * SSM calls by what they were for, as the callers asked for them (before the SDK's retries of
 * throttled calls; the server's counters count every request). Read from the requests themselves, so
 * a change in the launch engine shows here without any change to the benchmark.
 */
export class CallPurposes {
  readonly byCaller: Record<string, Record<string, number>> = {};

  add(caller: string, purpose: string): void {
    const mine = this.byCaller[caller] ?? {};
    mine[purpose] = (mine[purpose] ?? 0) + 1;
    this.byCaller[caller] = mine;
  }

  /** All callers together. */
  total(): Record<string, number> {
    const sum: Record<string, number> = {};
    for (const table of Object.values(this.byCaller)) {
      for (const [purpose, count] of Object.entries(table)) sum[purpose] = (sum[purpose] ?? 0) + count;
    }
    return sum;
  }
}

/** How a call about one instance that was already terminating or terminated is told apart. */
export const TERMINATED_PURPOSE = "of an instance already terminated";

let current: { purposes: CallPurposes; world?: World } | undefined;
let installed = false;

/**
 * Tallies the SSM calls made from now on into a fresh CallPurposes (one per run). With the world, a
 * call about one instance that is already terminating or terminated is told apart.
 */
export async function tallySsmCalls(world?: World): Promise<CallPurposes> {
  const purposes = new CallPurposes();
  current = { purposes, world };
  if (!installed) {
    installed = true;
    // Imported once a sandbox has set the environment the clients read when first imported.
    const { ssm } = await import("../functions/core/common/clients.js");
    ssm.middlewareStack.add(
      (next, context) => async (args) => {
        const caller = invocationScope.getStore()?.functionName ?? "external";
        const input = args.input as Record<string, unknown>;
        current?.purposes.add(caller, purposeOf(context.commandName ?? "", input, current.world));
        return next(args);
      },
      { step: "initialize", name: "agentfixBenchCallPurpose" },
    );
  }
  return purposes;
}

function purposeOf(command: string, input: Record<string, unknown>, world: World | undefined): string {
  const operation = command.replace(/Command$/, "");
  const page = input.NextToken ? ", next page" : "";
  if (operation === "ListCommandInvocations") {
    return input.CommandId
      ? `ListCommandInvocations of one command${page}`
      : `ListCommandInvocations of every install since the launch (resume check)${page}`;
  }
  if (operation === "SendCommand") return `SendCommand ${String(input.DocumentName ?? "")}`;
  const filters = (input.Filters ?? []) as { Key?: string; Values?: string[] }[];
  const named =
    typeof input.InstanceId === "string"
      ? [input.InstanceId]
      : (filters.find((filter) => filter.Key === "InstanceIds")?.Values ?? []);
  const instance = named.length === 1 ? world?.instances.get(named[0] ?? "") : undefined;
  const gone = instance && (instance.terminated || instance.lifecycleState.startsWith("Terminating"));
  return `${operation}${page}${gone ? ` ${TERMINATED_PURPOSE}` : ""}`;
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Calls per instance, two decimals. */
export function perInstance(calls: number, instances: number): number {
  return round(calls / Math.max(1, instances));
}

/** The entries of a per-operation table that belong to one service (`SSM`), without the prefix. */
export function ofService(table: Record<string, number>, service: string): Record<string, number> {
  return Object.fromEntries(
    Object.entries(table)
      .filter(([operation]) => operation.startsWith(`${service}.`))
      .map(([operation, count]) => [operation.slice(service.length + 1), count])
      .sort((a, b) => Number(b[1]) - Number(a[1])),
  );
}

/** The harm figure and its parts, and every agent restart by who caused it. */
export interface HarmSummary {
  harm: number;
  abandonedThatWouldHaveSucceeded: number;
  agentRestartsDuringDeployments: number;
  /** Of those, the restarts that hit a lifecycle event in progress (the rest fell between two events). */
  agentRestartsDuringLifecycleEvents: number;
  forbiddenRedeploys: number;
  installsOutOfScope: number;
  agentRestartsBy: Record<string, number>;
}

export function summarizeHarm(records: HarmRecords, figures: HarmFigures): HarmSummary {
  const { items: _items, ...parts } = figures;
  return {
    ...parts,
    agentRestartsDuringLifecycleEvents: records.restarts.filter(
      (restart) => restart.deployments.length > 0 && restart.duringEvent !== undefined,
    ).length,
    agentRestartsBy: records.restarts.reduce<Record<string, number>>((counts, restart) => {
      counts[restart.by] = (counts[restart.by] ?? 0) + 1;
      return counts;
    }, {}),
  };
}
