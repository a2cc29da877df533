import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { getClockScale } from "../../functions/core/common/clock.js";
import { skipIdleTime } from "../runtime/idle-skip.js";
import { createSandbox, type Sandbox } from "../sandbox.js";
import { careFigures } from "./do-no-harm.js";
import { describeHarm, harmFigures, stageScope, watchHarm } from "./harm-watch.js";
import type { Figures } from "./measure.js";
import { measure } from "./measure.js";
import { formatProgress } from "./progress.js";
import type { Check, Scenario, ScenarioOptions, Summary, SummaryFigures } from "./types.js";

export class UnknownScenarioError extends Error {
  override name = "UnknownScenarioError";
}

export class ScenarioExtraError extends Error {
  override name = "ScenarioExtraError";
}

export interface ScenarioResult {
  summary: Summary;
  figures: Figures;
  sandbox: Sandbox;
  /** AWS time the story started (progress and report times are relative to it). */
  startedAt: number;
}

/** Runs one scenario on a fresh sandbox and measures it. */
export async function runScenario(
  scenario: Scenario,
  options: ScenarioOptions = {},
): Promise<ScenarioResult> {
  const instances = options.instances ?? scenario.defaultInstances;
  const realStart = performance.now();
  const sandbox = await createSandbox({
    ...scenario.sandboxOptions(options, instances),
    ...(options.dynamodbEndpoint ? { dynamodbEndpoint: options.dynamodbEndpoint } : {}),
  });
  // How late the event loop runs timers: in AWS seconds, how far the world can drift from its schedule.
  const LAG_RESOLUTION_MS = 10;
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lag.enable();
  const { world } = sandbox;
  const watch = watchHarm(sandbox);
  let startedAt = world.now();
  let started = false;
  const unsubscribe = world.trace.subscribe((entry) => {
    if (!started) return;
    const line = formatProgress(entry, startedAt);
    if (line !== undefined) options.onProgress?.(line);
  });
  // The stretches in which nothing can happen are skipped, so the clock can run slow enough for the
  // handlers' own time (short Lambda timeouts included) without a long story taking long.
  const skip = await skipIdleTime(sandbox);
  const play = await scenario
    .play({
      sandbox,
      instances,
      options,
      note: (message) => {
        if (!started) {
          started = true;
          startedAt = world.now();
          // The set-up (importing the handlers) blocks the loop before anything is scheduled.
          lag.reset();
        }
        world.trace.record({ at: world.now(), kind: "scenario", message });
      },
      deploy: (config, deployOptions) => sandbox.deployService(config, deployOptions),
    })
    .catch(async (error: unknown) => {
      // A story that throws must not leave the world's timers (and the functions' schedules) running.
      await sandbox.close();
      throw error;
    })
    .finally(() => skip.stop());
  watch.stop();
  const figures = measure(sandbox, play.scope);
  const stages = (play.services ?? [play.service]).map(stageScope);
  const harm = harmFigures(sandbox, watch.records, stages);
  const care = careFigures(sandbox, watch.records, stages);
  const context = { harm, care, records: watch.records, stages };
  const checks: Check[] = [
    ...play.checks(figures, context),
    {
      name: "first, do no harm: no launch abandoned that would have succeeded, no agent restarted under a deployment, no forbidden redeploy, no install out of scope",
      ok: harm.harm === 0,
      detail: describeHarm(harm),
    },
    {
      name: "no instance lost, no duplicate install, no lifecycle action left waiting",
      ok: figures.lost === 0 && figures.duplicateInstalls === 0 && figures.waitingActions === 0,
      detail: `lost ${figures.lost}, duplicate installs ${figures.duplicateInstalls}, waiting actions ${figures.waitingActions}`,
    },
    {
      name: "the sandbox itself ran without internal errors",
      ok: world.errors.length === 0,
      detail: world.errors.length === 0 ? "none" : world.errors.map(String).slice(0, 3).join("; "),
    },
  ];
  unsubscribe();
  lag.disable();
  const scale = getClockScale();
  // The histogram records the whole timer interval; what exceeds the resolution is the delay.
  const lagSeconds = (nanoseconds: number) =>
    Math.round(Math.max(0, nanoseconds / 1e6 - LAG_RESOLUTION_MS) / scale / 100) / 10;
  const timing = {
    clockScale: scale,
    eventLoopDelayAwsSeconds: {
      p50: lagSeconds(lag.percentile(50)),
      p99: lagSeconds(lag.percentile(99)),
      max: lagSeconds(lag.max),
    },
    // Beyond a few AWS seconds of delay at p99 the machine, not the service, shapes the latencies.
    faithful: lagSeconds(lag.percentile(99)) <= 5,
  };
  const { lostInstances, ...rest } = figures;
  const own: SummaryFigures = {
    scenario: scenario.name,
    ok: checks.every((check) => check.ok),
    seed: options.seed ?? 1,
    ...rest,
    instances,
    launched: figures.instances,
    awsSeconds: Math.round((world.now() - startedAt) / 1000),
    realSeconds: Math.round((performance.now() - realStart) / 100) / 10,
    checks,
    lostInstances,
    harm,
    care,
    throttledByOperation: { ...sandbox.counters.throttled },
    faultsByOperation: { ...sandbox.counters.faults },
    apiErrors: { ...sandbox.counters.errors },
    timing,
    ...(sandbox.dynamodb.external
      ? {
          externalDynamoDb: {
            endpoint: sandbox.dynamodb.endpoint,
            tables: [...sandbox.dynamodb.tables],
            counted: false as const,
          },
        }
      : {}),
  };
  const extra = play.extra?.(context) ?? {};
  // A scenario's figure under one of the summary's own names would silently replace that figure in the
  // printed summary and in `--json` (a CodeDeploy counter once replaced `harm`, and the summary could
  // not be printed): refuse it, naming the scenario and the key.
  const reused = Object.keys(extra).filter((key) => Object.hasOwn(own, key));
  if (reused.length > 0) {
    await sandbox.close();
    throw new ScenarioExtraError(
      `scenario ${scenario.name} reports ${reused.join(", ")} beside the summary's own figures of the same name`,
    );
  }
  const summary: Summary = { ...own, ...extra };
  if (!options.keepOpen) await sandbox.close();
  return { summary, figures, sandbox, startedAt };
}
