import { clock, setClockScale } from "../functions/core/common/clock.js";
import type { StageConfigInput } from "../stacks/config.js";
import { type DeliveryFaults, EventBus } from "./events/bus.js";
import { configureAwsEnvironment } from "./runtime/environment.js";
import { LambdaRuntime, type RuntimeFaults } from "./runtime/lambda.js";
import { SandboxServer } from "./server/server.js";
import type { ApiCounters, TrafficOptions } from "./server/traffic.js";
import { type DeployOptions, deployService, type ServiceDeployment } from "./service.js";
import { World, type WorldOptions } from "./world/world.js";

/**
 * The sandbox: a world, the protocol server that serves it, an event bus and a Lambda runtime, all on
 * one scaled clock. A process keeps one server (the handlers' clients keep their endpoint), so
 * sandboxes created one after another in a process share it; only one is live at a time.
 */
export interface SandboxOptions {
  seed?: number | string;
  /** Real milliseconds per AWS millisecond; 0.005 runs an AWS second in 5 ms. */
  clockScale?: number;
  /** AWS time (epoch ms) at which the run starts; default a fixed morning, for reproducible output. */
  startAt?: number;
  world?: Omit<WorldOptions, "seed">;
  /** Throttling, injected 5xx and latency of the APIs. */
  traffic?: TrafficOptions;
  /** Drops, duplicates and delays of EventBridge deliveries. */
  events?: DeliveryFaults;
  /** Invocations cut off mid-way (timeouts, crashed containers). */
  lambda?: RuntimeFaults;
  /** Port for the process's server, when it is first started (0 = a free port). */
  port?: number;
  /** Keep Powertools logs of the handlers silent (default true). */
  quiet?: boolean;
}

export interface Sandbox {
  readonly world: World;
  readonly server: SandboxServer;
  readonly bus: EventBus;
  readonly runtime: LambdaRuntime;
  readonly endpoint: string;
  readonly counters: ApiCounters;
  /** Deploys launch, deployment-failure and sweep functions as the stacks do, from a stage configuration. */
  deployService(config: StageConfigInput, options?: DeployOptions): Promise<ServiceDeployment>;
  /** Resolves true once `ready()` holds (checked every `pollSeconds` AWS seconds), false after `timeoutSeconds`. */
  waitFor(ready: () => boolean, options: { timeoutSeconds: number; pollSeconds?: number }): Promise<boolean>;
  /** AWS seconds since the sandbox started. */
  elapsedSeconds(): number;
  close(): Promise<void>;
}

export const DEFAULT_CLOCK_SCALE = 0.005;
export const DEFAULT_START = Date.parse("2026-03-02T07:00:00Z");

let sharedServer: Promise<SandboxServer> | undefined;

/** The process's protocol server, started on first use. */
export function processServer(port?: number): Promise<SandboxServer> {
  sharedServer ??= SandboxServer.start({ port }).then((server) => {
    server.unref();
    return server;
  });
  return sharedServer;
}

export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const server = await processServer(options.port);
  setClockScale(options.clockScale ?? DEFAULT_CLOCK_SCALE, options.startAt ?? DEFAULT_START);
  const startedAt = clock.now();
  const world = new World({ seed: options.seed ?? 1, ...options.world });
  server.attach(world, options.traffic);
  configureAwsEnvironment(server.endpoint, world.region, options.quiet ?? true);
  const bus = new EventBus(world, options.events);
  const runtime = new LambdaRuntime(world, options.lambda);
  let closed = false;
  return {
    world,
    server,
    bus,
    runtime,
    endpoint: server.endpoint,
    counters: server.counters,
    deployService: (config, deployOptions) => deployService(world, bus, runtime, config, deployOptions),
    async waitFor(ready, { timeoutSeconds, pollSeconds = 5 }) {
      const deadline = clock.now() + timeoutSeconds * 1000;
      while (!ready()) {
        if (clock.now() >= deadline || closed) return ready();
        await clock.sleep(Math.min(pollSeconds * 1000, deadline - clock.now()));
      }
      return true;
    },
    elapsedSeconds: () => (clock.now() - startedAt) / 1000,
    async close() {
      if (closed) return;
      closed = true;
      runtime.stop();
      bus.close();
      world.stop();
      if (server.world === world) server.detach();
    },
  };
}
