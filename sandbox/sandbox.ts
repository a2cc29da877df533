import { clock, setClockScale } from "../functions/core/common/clock.js";
import type { StageConfigInput } from "../stacks/config.js";
import { type DeliveryFaults, EventBus } from "./events/bus.js";
import {
  type DynamoDbTarget,
  ExternalDynamoDbError,
  externalDynamoDb,
  parseDynamoDbEndpoint,
  worldDynamoDb,
} from "./runtime/dynamodb-target.js";
import { configureAwsEnvironment } from "./runtime/environment.js";
import { LambdaRuntime, type RuntimeFaults } from "./runtime/lambda.js";
import { SandboxServer } from "./server/server.js";
import type { ApiCounters, TrafficOptions } from "./server/traffic.js";
import {
  type DeployOptions,
  deployService,
  type ServiceDeployment,
  type StageUpdate,
  updateStageHooks,
} from "./service.js";
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
  /**
   * Another DynamoDB implementation for the handlers (e.g. moto's `http://127.0.0.1:5000`), default
   * `AGENTFIX_SANDBOX_DYNAMODB_ENDPOINT`, else the sandbox's own model. The service's tables are
   * created there at deploy, under a prefix unique to the run; its calls are not counted by the sandbox.
   */
  dynamodbEndpoint?: string;
}

/** The environment variable that points the handlers' DynamoDB at another implementation. */
export const DYNAMODB_ENDPOINT_ENV = "AGENTFIX_SANDBOX_DYNAMODB_ENDPOINT";

export interface Sandbox {
  readonly world: World;
  readonly server: SandboxServer;
  readonly bus: EventBus;
  readonly runtime: LambdaRuntime;
  readonly endpoint: string;
  /** Call counts of the sandbox's server: DynamoDB's are missing when `dynamodb.external`. */
  readonly counters: ApiCounters;
  /** Where the handlers' DynamoDB calls go and the tables deployed there. */
  readonly dynamodb: DynamoDbTarget;
  /** Deploys launch, deployment-failure and sweep functions as the stacks do, from a stage configuration. */
  deployService(config: StageConfigInput, options?: DeployOptions): Promise<ServiceDeployment>;
  /**
   * A stack update of a deployed stage to a new configuration: hooks of groups it no longer names are
   * drained (waiting launches completed with CONTINUE) and deleted, new groups get the hook.
   */
  updateService(deployment: ServiceDeployment, config: StageConfigInput): Promise<StageUpdate>;
  /** Resolves true once `ready()` holds (checked every `pollSeconds` AWS seconds), false after `timeoutSeconds`. */
  waitFor(ready: () => boolean, options: { timeoutSeconds: number; pollSeconds?: number }): Promise<boolean>;
  /** AWS seconds since the sandbox started. */
  elapsedSeconds(): number;
  close(): Promise<void>;
}

export const DEFAULT_CLOCK_SCALE = 0.005;
export const DEFAULT_START = Date.parse("2026-03-02T07:00:00Z");

let sharedServer: Promise<SandboxServer> | undefined;
/**
 * The DynamoDB endpoint the process's handlers were given first. Their shared client
 * (functions/core/common/clients.ts) reads `AWS_ENDPOINT_URL_DYNAMODB` at its first call and keeps it
 * for the life of the process, so a later sandbox pointing elsewhere would silently write to the
 * first endpoint's tables; it is refused instead.
 */
let processDynamoDbEndpoint: string | undefined;

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
  const dynamodb = dynamoDbTarget(options, world, server.endpoint);
  server.attach(world, options.traffic);
  configureAwsEnvironment(server.endpoint, world.region, options.quiet ?? true, {
    dynamodb: dynamodb.endpoint,
  });
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
    dynamodb,
    deployService: (config, deployOptions) =>
      deployService(world, bus, runtime, config, deployOptions, dynamodb),
    updateService: (deployment, config) => updateStageHooks(world, deployment, config),
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

function dynamoDbTarget(options: SandboxOptions, world: World, ownEndpoint: string): DynamoDbTarget {
  const fromEnv = process.env[DYNAMODB_ENDPOINT_ENV] || undefined;
  const given = options.dynamodbEndpoint ?? fromEnv;
  const target = given
    ? externalDynamoDb(
        parseDynamoDbEndpoint(given, options.dynamodbEndpoint ? "dynamodbEndpoint" : DYNAMODB_ENDPOINT_ENV),
        world.region,
      )
    : worldDynamoDb(world, ownEndpoint);
  processDynamoDbEndpoint ??= target.endpoint;
  if (processDynamoDbEndpoint !== target.endpoint)
    throw new ExternalDynamoDbError(
      `this process's handlers already use DynamoDB at ${processDynamoDbEndpoint}; their client keeps its first endpoint, so a sandbox with DynamoDB at ${target.endpoint} needs a process (a test file) of its own`,
    );
  return target;
}
