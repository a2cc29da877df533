import { afterEach, describe, expect, it } from "vitest";
import { type IdleSkip, skipIdleTime } from "../../sandbox/runtime/idle-skip.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import type { Queue, QueueMessage } from "../../sandbox/world/sqs.js";
import { DEFAULT_PACKAGE_VERSIONS } from "../../sandbox/world/ssm/distributor.js";
import { testSandbox } from "./helpers.js";

/**
 * The project's promise for a slow install: a healthy launch that waits an hour never reaches the
 * dead-letter queue and never raises an alarm, and what it costs is small and stated. The whole
 * service runs (launch function, its queue, SSM's command events, the sweep every minute) with
 * Distributor taking an hour per install and the hook's default 15-minute heartbeat timeout, which
 * the service's own heartbeats keep alive.
 */
const INSTALL_SECONDS = 3600;
/** Receives of launch-queue messages naming one instance, over its whole hour-long launch. */
const MAX_RECEIVES_PER_LAUNCH = 25;
/** ListCommandInvocations calls per install command (one read serves every instance of it). */
const MAX_READS_PER_COMMAND = 12;

describe("a healthy launch whose install takes an hour", () => {
  let sandbox: Sandbox | undefined;
  let skip: IdleSkip | undefined;
  afterEach(async () => {
    skip?.stop();
    skip = undefined;
    await sandbox?.close();
    sandbox = undefined;
  });

  it("continues with a verified agent, stays out of the dead-letter queue and costs a few receives and reads", async () => {
    sandbox = await testSandbox({
      seed: "slow-install",
      // Slow enough for the handlers' own time (40 s launch invocations); the hour passes in the
      // stretches the idle skip jumps over.
      clockScale: 0.2,
      world: { ssm: { installSeconds: { min: INSTALL_SECONDS - 60, max: INSTALL_SECONDS + 60 } } },
    });
    skip = await skipIdleTime(sandbox);
    const { world } = sandbox;
    world.autoScaling.createGroup({
      name: "web",
      maxSize: 4,
      image: { imageId: "ami-1", bakedAgent: null, registrationDelaySeconds: 20 },
    });
    const service = await sandbox.deployService({ groups: ["web"] }, { stage: "dev" });
    expect(service.sweep).toBeDefined();

    // Every receive of a launch-queue message, by the instance it names and the kind of message.
    const receives = new Map<string, { event: number; command: number; sweep: number; other: number }>();
    const receive = world.sqs.receive.bind(world.sqs);
    world.sqs.receive = (queue: Queue, max: number, visibility?: number): QueueMessage[] => {
      const taken = receive(queue, max, visibility);
      if (queue === service.launchQueue)
        for (const message of taken) {
          const kind = message.body.includes('"source":"sweep"')
            ? "sweep"
            : message.body.includes("Command Invocation Status-change")
              ? "command"
              : message.body.includes("Instance-launch Lifecycle Action")
                ? "event"
                : "other";
          for (const id of new Set(message.body.match(/i-[0-9a-f]{8,17}/g) ?? [])) {
            const counts = receives.get(id) ?? { event: 0, command: 0, sweep: 0, other: 0 };
            counts[kind] += 1;
            receives.set(id, counts);
          }
        }
      return taken;
    };

    world.autoScaling.setDesiredCapacity("web", 2);
    const hook = service.config.hook.name;
    const launches = () => world.autoScaling.actions.filter((action) => action.hookName === hook);
    await sandbox.waitFor(() => launches().length === 2, { timeoutSeconds: 60, pollSeconds: 1 });
    const ids = launches().map((action) => action.instanceId);

    const done = await sandbox.waitFor(() => launches().every((action) => action.completed), {
      timeoutSeconds: INSTALL_SECONDS + 900,
      pollSeconds: 30,
    });
    expect(done).toBe(true);
    for (const action of launches()) {
      expect(action.completed).toMatchObject({ result: "CONTINUE", by: "api" });
      // Kept alive by our heartbeats for an hour past a 15-minute heartbeat timeout.
      expect(action.heartbeats).toBeGreaterThanOrEqual(4);
      expect((action.completed!.at - action.startedAt) / 1000).toBeGreaterThan(INSTALL_SECONDS - 60);
    }
    const expected = DEFAULT_PACKAGE_VERSIONS.AWSCodeDeployAgent!.at(-1);
    for (const id of ids)
      expect(world.instance(id).agent).toMatchObject({ running: true, version: expected });

    // Let the queue settle: nothing of these launches is left behind to reach the DLQ later.
    await sandbox.waitFor(() => service.launchQueue.messages.length === 0, {
      timeoutSeconds: 1800,
      pollSeconds: 30,
    });
    expect(service.launchQueue.messages).toEqual([]);
    expect(service.launchQueue.movedToDeadLetter).toBe(0);
    expect(service.launchDeadLetterQueue.messages).toEqual([]);
    // No function error or timeout (each would raise an alarm).
    expect(service.launch.stats).toMatchObject({ errors: 0, timeouts: 0 });
    expect(service.sweep!.stats).toMatchObject({ errors: 0, timeouts: 0 });
    expect(service.sweep!.stats.invocations).toBeGreaterThanOrEqual(60);

    const commands = [...world.ssm.commands.values()].filter((command) =>
      command.instanceIds.some((id) => ids.includes(id)),
    );
    expect(world.ssm.counters).toMatchObject({ duplicateInstalls: 0, installsSent: 2 });
    const reads = sandbox.counters.calls["SSM.ListCommandInvocations"] ?? 0;
    const figures = {
      receives: Object.fromEntries(receives),
      reads,
      commands: commands.length,
      launchInvocations: service.launch.stats.invocations,
    };
    for (const id of ids) {
      const counts = receives.get(id)!;
      const total = counts.event + counts.command + counts.sweep + counts.other;
      expect(total, JSON.stringify(figures)).toBeLessThanOrEqual(MAX_RECEIVES_PER_LAUNCH);
      // The launch's own message and its events carried it: the sweep had nothing to find.
      expect(counts.sweep, id).toBe(0);
    }
    expect(reads, JSON.stringify(figures)).toBeLessThanOrEqual(MAX_READS_PER_COMMAND * commands.length);
  });
});
