import { readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { processServer } from "../sandbox/sandbox.js";
import { ASSUMED_RATE_LIMITS } from "../sandbox/server/rates.js";
import type { StageConfigInput } from "../stacks/config.js";
import { runBurst } from "./burst.js";
import { measureColdStart } from "./cold-start.js";
import { EVENT_LOSS_INSTANCES, runEventLoss } from "./event-loss.js";
import {
  type BenchReport,
  compare,
  evaluateGoals,
  formatSummary,
  type ScalingPoint,
  type SideBySide,
} from "./report.js";
import { ALTERNATIVES, type AlternativeResult, runAlternative, SIDE_BY_SIDE_FAULTS } from "./side-by-side.js";

/**
 * `npm run bench`: the service's figures on the sandbox, in one process and one run: a 1,000-instance
 * burst under throttling, a side-by-side with the alternatives under both of CodeDeploy's documented
 * agent waits, the cold start of each function, SSM calls against fleet size, and the burst again with
 * EventBridge events dropped and repeated. A readable summary,
 * then (with --json) one JSON object as the last line of stdout.
 */
const USAGE = `Usage: npm run bench -- [options]

  --json                 end stdout with one JSON object of every figure (progress goes to stderr)
  --instances <n>        burst size (default 1000)
  --side-instances <n>   fleet of the side-by-side comparison (default 200)
  --seed <s>             random seed of the fleets and faults (default 1)
  --scale <r>            real ms per AWS ms while something happens (default 1; idle time is skipped)
  --config <json>        stage configuration of the service, merged over the defaults
                         (e.g. '{"agent":{"pollIntervalMs":10000},"launch":{"maxConcurrency":10}}')
  --loss-instances <n>   burst size of the event-loss part (default ${EVENT_LOSS_INSTANCES})
  --with-5000            add a 5,000-instance point to the scaling part (slow)
  --only <parts>         comma-separated subset of: burst, side-by-side, cold-start, scaling, event-loss
`;

const PARTS = ["burst", "side-by-side", "cold-start", "scaling", "event-loss"] as const;
const AGENT_WAITS = [300, 3600] as const;
/** Fleet sizes of the scaling part (the burst's own size is added); 5,000 only with --with-5000. */
const SCALING_SIZES = [100, 1000] as const;
const LARGE_SCALING_SIZE = 5000;

export class BenchUsageError extends Error {
  override name = "BenchUsageError";
}

const RATES_SOURCE =
  "assumed: AWS publishes no per-operation TPS quota for these SSM and Auto Scaling operations " +
  "(neither the Service Quotas pages nor the API references give one); conservative rates of the order customers report being " +
  "throttled at, from sandbox/server/rates.ts";

const CLOCK_NOTE = (scale: number) =>
  `clock: AWS time runs at ${scale} real ms per AWS ms while anything happens; stretches in which ` +
  "nothing can happen (every handler and the world waiting on a timer, no call on the wire) are skipped; " +
  "figures are in AWS seconds";

function positive(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new BenchUsageError(`--${name} needs a positive number, got "${value}"`);
  return parsed;
}

function machine(): BenchReport["machine"] {
  let cpu = cpus()[0]?.model ?? "unknown CPU";
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
    if (model) cpu = model.trim();
  } catch {
    // Not Linux: the model Node reports.
  }
  return {
    cpu,
    cores: availableParallelism(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export async function main(argv: string[]): Promise<BenchReport | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "boolean", default: false },
      instances: { type: "string" },
      "side-instances": { type: "string" },
      "loss-instances": { type: "string" },
      "with-5000": { type: "boolean", default: false },
      seed: { type: "string" },
      scale: { type: "string" },
      config: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const instances = Math.round(positive(values.instances, "instances", 1000));
  const sideInstances = Math.round(positive(values["side-instances"], "side-instances", 200));
  const lossInstances = Math.round(
    positive(values["loss-instances"], "loss-instances", EVENT_LOSS_INSTANCES),
  );
  const scale = positive(values.scale, "scale", 1);
  const seed = values.seed === undefined ? 1 : /^\d+$/.test(values.seed) ? Number(values.seed) : values.seed;
  let config: StageConfigInput | undefined;
  if (values.config !== undefined) {
    try {
      config = JSON.parse(values.config) as StageConfigInput;
    } catch (error) {
      throw new BenchUsageError(`--config is not JSON: ${(error as Error).message}`);
    }
  }
  const only = values.only?.split(",").map((part) => part.trim()) ?? [...PARTS];
  const unknown = only.filter((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown.length > 0)
    throw new BenchUsageError(`unknown part(s) ${unknown.join(", ")}; choose from ${PARTS.join(", ")}`);
  const progress = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);

  const started = performance.now();
  const rates = ASSUMED_RATE_LIMITS;
  const report: Omit<BenchReport, "goals" | "realSeconds"> = {
    machine: machine(),
    command: `npm run bench --${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`.replace(/ --$/, ""),
    rates,
    ratesSource: RATES_SOURCE,
    clock: { scale, note: CLOCK_NOTE(scale) },
  };

  if (only.includes("cold-start")) {
    progress("cold start: bundling each function and importing it in fresh node processes...");
    const { bare, functions } = await measureColdStart();
    report.coldStart = functions;
    report.coldStartBaseline = bare;
  }

  if (only.includes("burst") || only.includes("scaling")) {
    progress(`burst: ${instances} instances at once...`);
    report.burst = await runBurst({ instances, seed, clockScale: scale, rates, config });
    progress(`burst: done in ${report.burst.realSeconds} s (${report.burst.awsSeconds} AWS s)`);
  }

  if (only.includes("scaling") && report.burst) {
    const sizes = new Set<number>([...SCALING_SIZES, instances]);
    if (values["with-5000"]) sizes.add(LARGE_SCALING_SIZE);
    const points: ScalingPoint[] = [];
    for (const size of [...sizes].sort((a, b) => a - b)) {
      if (size === instances) {
        points.push(scalingPoint(report.burst));
        continue;
      }
      progress(`scaling: ${size} instances...`);
      const run = await runBurst({ instances: size, seed, clockScale: scale, rates, config });
      points.push(scalingPoint(run));
    }
    report.scaling = points;
  }
  if (!only.includes("burst")) report.burst = undefined;

  if (only.includes("side-by-side")) {
    const byAgentWait = [];
    for (const agentWaitSeconds of AGENT_WAITS) {
      const results = {} as Record<(typeof ALTERNATIVES)[number], AlternativeResult>;
      for (const alternative of ALTERNATIVES) {
        progress(
          `side by side (agent wait ${agentWaitSeconds} s): ${alternative}, ${sideInstances} instances...`,
        );
        results[alternative] = await runAlternative(alternative, {
          instances: sideInstances,
          seed,
          clockScale: scale,
          rates,
          faults: SIDE_BY_SIDE_FAULTS,
          agentWaitSeconds,
          config,
        });
      }
      byAgentWait.push(compare(results, agentWaitSeconds));
    }
    const sideBySide: SideBySide = {
      instances: sideInstances,
      seed,
      faults: SIDE_BY_SIDE_FAULTS,
      ...byAgentWait[0]!,
      byAgentWait,
    };
    report.sideBySide = sideBySide;
  }

  if (only.includes("event-loss")) {
    report.eventLoss = await runEventLoss(
      { instances: lossInstances, seed, clockScale: scale, rates, config },
      progress,
    );
  }

  const realSeconds = Math.round((performance.now() - started) / 1000);
  const goals = evaluateGoals({ ...report, realSeconds });
  const full: BenchReport = { ...report, goals, realSeconds };
  process.stdout.write(`${formatSummary(full)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(full)}\n`);
  return full;
}

export function scalingPoint(run: Awaited<ReturnType<typeof runBurst>>): ScalingPoint {
  return {
    instances: run.instances,
    ssmCalls: run.ssmCalls,
    ssmCallsPerInstance: run.ssmCallsPerInstance,
    autoScalingCallsPerInstance: run.autoScalingCallsPerInstance,
    ssmCallsAskedPerInstance:
      Math.round(
        (Object.values(run.ssmCallsByPurpose).reduce((sum, count) => sum + count, 0) / run.launched) * 100,
      ) / 100,
    p95Seconds: run.hookToCompleteSeconds.p95,
    p50Seconds: run.hookToCompleteSeconds.p50,
    awsSeconds: run.awsSeconds,
    realSeconds: run.realSeconds,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    async () => {
      // The SDK clients keep connections to the sandbox alive; closing it lets the process end now.
      await (await processServer()).close();
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(
        error instanceof BenchUsageError
          ? `${error.message}\n\n${USAGE}`
          : `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(2);
    },
  );
}
