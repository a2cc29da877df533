import {
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import { CodeDeployClient } from "@aws-sdk/client-codedeploy";
import { GetDocumentCommand, ListCommandInvocationsCommand, SendCommandCommand } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { metrics } from "../../functions/core/common/powertools.js";
import { METRIC } from "../../functions/core/contract.js";
import { reconcileQueueBatch, replayPayload } from "../../functions/core/launch/queue.js";
import { memoryStore } from "../../functions/core/launch/records.js";
import { stepOnce } from "../../functions/core/launch/step.js";
import { parseLaunchInput } from "../../functions/schemas/launch-input.js";
import { launchHook } from "./support/aws-answers.js";
import { sqsRecord } from "./support/launch-events.js";
import {
  autoScaling,
  commandEvent,
  driveQueue,
  driveUntilDone,
  GROUP,
  HOOK,
  ids,
  LaunchWorld,
  launchConfig,
  type Outcome,
  sqs,
  ssm,
  stepContext,
} from "./support/launch-world.js";

let world: LaunchWorld;
beforeEach(() => {
  world = new LaunchWorld();
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => {
  ssm.restore();
  autoScaling.restore();
  sqs.restore();
});

const requestsOf = (event: object) => {
  const parsed = parseLaunchInput(event);
  return parsed === "test-notification" ? [] : parsed;
};
const sends = () => ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
const reads = () => ssm.commandCalls(ListCommandInvocationsCommand).length;
const completedTokens = () =>
  autoScaling
    .commandCalls(CompleteLifecycleActionCommand)
    .map((call) => call.args[0].input.InstanceId ?? call.args[0].input.LifecycleActionToken);

/** Runs the same launches through each driver, in a fresh world each. */
async function bothDrivers(
  launch: (world: LaunchWorld) => object[],
  queueOptions: Parameters<typeof driveQueue>[2] = {},
) {
  const results: { driver: string; outcomes: Map<string, string>; installs: number; world: LaunchWorld }[] =
    [];
  for (const driver of ["queue", "until-done"] as const) {
    vi.restoreAllMocks();
    world = new LaunchWorld();
    const events = launch(world);
    const outcomes =
      driver === "queue"
        ? (await driveQueue(world, events, queueOptions)).outcomes
        : await driveUntilDone(world, events, {
            ...(queueOptions.config ? { config: queueOptions.config } : {}),
          });
    results.push({
      driver,
      outcomes: new Map([...outcomes].map(([id, outcome]) => [id, outcome.outcome])),
      installs: world.commands.reduce((sum, command) => sum + command.instanceIds.length, 0),
      world,
    });
  }
  return results;
}

describe("one launch state machine, two drivers", () => {
  it("installs, verifies and continues a launch through events, the same way in both drivers", async () => {
    const [queue, untilDone] = await bothDrivers((w) => w.launch(["i-0000000000000000a"]));
    for (const run of [queue, untilDone]) {
      expect(run?.outcomes.get("i-0000000000000000a")).toBe("CONTINUE");
      expect(run?.world.completionsOf("i-0000000000000000a")).toEqual(["CONTINUE"]);
      expect(run?.installs).toBe(1);
    }
  });

  it("sends one install for a duplicated launch and a duplicated command event, in both drivers", async () => {
    const [queue, untilDone] = await bothDrivers(
      (w) => {
        const events = w.launch(["i-0000000000000000a"]);
        return [...events, ...events];
      },
      { repeat: true },
    );
    for (const run of [queue, untilDone]) {
      expect(run?.outcomes.get("i-0000000000000000a")).toBe("CONTINUE");
      expect(run?.installs).toBe(1);
      expect(run?.world.completionsOf("i-0000000000000000a")).toEqual(["CONTINUE"]);
    }
  });

  it("retries a failed install once, then completes with the failure result, in both drivers", async () => {
    const failing: Outcome[] = ["fail", "fail"];
    const config = launchConfig({ FAILURE_RESULT: "ABANDON", INSTALL_ATTEMPTS: 2 });
    const [queue, untilDone] = await bothDrivers(
      (w) => w.launch(["i-0000000000000000a"], { outcomes: failing }),
      {
        config,
      },
    );
    for (const run of [queue, untilDone]) {
      expect(run?.installs).toBe(2);
      expect(run?.outcomes.get("i-0000000000000000a")).toBe("ABANDON");
      expect(run?.world.completionsOf("i-0000000000000000a")).toEqual(["ABANDON"]);
    }
  });

  it("fails open: an install that fails for good is let in with CONTINUE by default", async () => {
    const run = await driveQueue(
      world,
      world.launch(["i-0000000000000000a"], { outcomes: ["fail", "fail"] }),
    );
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    expect(run.outcomes.get("i-0000000000000000a")?.reason).toContain("completed CONTINUE (FAILURE_RESULT)");
  });

  it("sends 60 launches in at most two commands, in both drivers", async () => {
    const [queue, untilDone] = await bothDrivers((w) => w.launch(ids(60), { registerAfterMs: 5_000 }));
    for (const run of [queue, untilDone]) {
      expect(run?.world.commands.length).toBeLessThanOrEqual(2);
      expect([...(run?.outcomes.values() ?? [])].every((outcome) => outcome === "CONTINUE")).toBe(true);
      expect(run?.outcomes.size).toBe(60);
    }
  });
});

describe("the launch step", () => {
  it("waits out a late SSM registration instead of failing", async () => {
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"], { registerAfterMs: 240_000 }));
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    expect(world.installsOn("i-0000000000000000a")).toBe(1);
  });

  it("lets an instance that never registers in with CONTINUE: not the instance's own fault", async () => {
    const config = launchConfig({ FAILURE_RESULT: "ABANDON", REGISTRATION_TIMEOUT_SECONDS: 120 });
    const run = await driveQueue(
      world,
      world.launch(["i-0000000000000000a"], { registerAfterMs: 3600_000 }),
      {
        config,
      },
    );
    const outcome = run.outcomes.get("i-0000000000000000a");
    expect(outcome?.outcome).toBe("CONTINUE");
    expect(outcome?.reason).toContain("never came Online with SSM");
    expect(outcome?.reason).toContain("not the instance's own fault");
    expect(world.installsOn("i-0000000000000000a")).toBe(0);
  });

  it("never sends an install once the lifecycle action is over, for a launch event too", async () => {
    const events = world.launch(["i-0000000000000000a"]);
    // The event arrives late: the launch went on without us and the instance is in service.
    world.now += 600_000;
    const instance = world.instances.get("i-0000000000000000a");
    if (instance) {
      instance.lifecycleState = "InService";
      instance.actionOpen = false;
    }
    const run = await driveQueue(world, events);
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("ALREADY_COMPLETED");
    expect(sends()).toHaveLength(0);
  });

  it("asks Auto Scaling before an install only about launches that are not fresh from their event", async () => {
    await driveQueue(world, world.launch(ids(3), { registerAfterMs: 10_000 }));
    expect(autoScaling.commandCalls(DescribeAutoScalingInstancesCommand)).toHaveLength(0);
    vi.restoreAllMocks();
    world = new LaunchWorld();
    // Registered only after three minutes: the launch is looked at before its install goes out.
    await driveQueue(world, world.launch(ids(3), { registerAfterMs: 180_000 }));
    expect(autoScaling.commandCalls(DescribeAutoScalingInstancesCommand).length).toBeGreaterThan(0);
    expect(sends()).toHaveLength(1);
  });

  it("continues an instance whose agent already runs at the expected version or newer, installing nothing", async () => {
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"], { outcomes: ["current"] }));
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    expect(run.outcomes.get("i-0000000000000000a")?.reason).toContain("nothing installed");
  });

  it("waits out a deployment running on the instance without using up an attempt", async () => {
    const config = launchConfig({ FAILURE_RESULT: "ABANDON", INSTALL_ATTEMPTS: 1 });
    const run = await driveQueue(
      world,
      world.launch(["i-0000000000000000a"], { outcomes: ["deploying", "ok"] }),
      {
        config,
      },
    );
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    expect(world.installsOn("i-0000000000000000a")).toBe(2);
  });

  it("asks CodeDeploy before it replaces an older agent that runs, then replaces it", async () => {
    const addMetric = vi.spyOn(metrics, "addMetric");
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"], { runningAgent: "1.6.0" }));
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    const [first, second] = world.commands;
    expect(first?.allowRestart).toBe(false);
    expect(second?.allowRestart).toBe(true);
    // The instance's AMI bakes an outdated agent: it is named, and counted once.
    expect(run.outcomes.get("i-0000000000000000a")?.bakedAgent?.agentVersion).toBe("1.6.0");
    expect(addMetric.mock.calls.filter(([name]) => name === METRIC.outdatedAgentInAmi)).toHaveLength(1);
  });

  it("looks a slow install up with growing gaps: an hour-long install costs a few reads and receives", async () => {
    world.installMs = 3600_000;
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"]), { dropSignals: true });
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    // Overdue after 60 s, then 120, 240, 480, 900, 900, ... seconds: about ten looks in an hour.
    expect(reads()).toBeLessThanOrEqual(12);
    expect(run.receives).toBeLessThanOrEqual(20);
  });

  it("completes first the launch held longest, when one read settles several", async () => {
    const [first, second, unregistered] = ids(3) as [string, string, string];
    // Both register at once (one command) and their events come together; the first launched 20 s
    // earlier. A third launch still waiting for registration looks every beat, so the events are read
    // within seconds of their installs' end, before either launch is late.
    const firstLaunch = world.launch([first], { registerAfterMs: 30_000 });
    world.now += 20_000;
    const secondLaunch = world.launch([second], { registerAfterMs: 10_000 });
    const waiting = world.launch([unregistered], { registerAfterMs: 3600_000 });
    await driveQueue(world, [...secondLaunch, ...firstLaunch, ...waiting], { untilMs: 150_000 });
    expect(world.commands).toHaveLength(1);
    expect(completedTokens()).toEqual([`token-${first}`, `token-${second}`]);
  });

  it("completes first a launch left late, judged from its install's end however late that end was read", async () => {
    const [held, quick] = ids(2) as [string, string];
    world.installMsOf.set(held, 50_000);
    world.installMsOf.set(quick, 10_000);
    const heldLaunch = world.launch([held], { registerAfterMs: 30_000 });
    world.now += 20_000;
    const quickLaunch = world.launch([quick], { registerAfterMs: 10_000 });
    // Their events are lost: the overdue read finds the quick install ended 40 s before, longer than
    // its own work took; the other ended 10 s before, after 90 s of work.
    await driveQueue(world, [...heldLaunch, ...quickLaunch], { dropSignals: true });
    expect(world.commands).toHaveLength(1);
    expect(completedTokens()).toEqual([`token-${quick}`, `token-${held}`]);
  });

  it("settles every instance of a command with one read when their events arrive together", async () => {
    const run = await driveQueue(world, world.launch(ids(10)));
    expect([...run.outcomes.values()].every((outcome) => outcome.outcome === "CONTINUE")).toBe(true);
    expect(world.commands).toHaveLength(1);
    expect(reads()).toBeLessThanOrEqual(2);
  });
});

describe("concurrency by construction", () => {
  const toRequests = (events: object[]) =>
    events.flatMap((event) => {
      const parsed = parseLaunchInput(event);
      return parsed === "test-notification" ? [] : parsed;
    });

  it("two invocations stepping the same launch at once send one install between them", async () => {
    const store = memoryStore();
    const requests = toRequests(world.launch(["i-0000000000000000a"], { registerAfterMs: 0 }));
    const config = launchConfig();
    await Promise.all([
      stepOnce({ requests, signals: [] }, config, stepContext(world, store)),
      stepOnce({ requests, signals: [] }, config, stepContext(world, store)),
    ]);
    world.now += 10_000;
    await Promise.all([
      stepOnce({ requests, signals: [] }, config, stepContext(world, store)),
      stepOnce({ requests, signals: [] }, config, stepContext(world, store)),
    ]);
    expect(sends()).toHaveLength(1);
  });

  it("two invocations settling one install at once complete its action once", async () => {
    const store = memoryStore();
    const requests = toRequests(world.launch(["i-0000000000000000a"], { registerAfterMs: 0 }));
    const config = launchConfig();
    await stepOnce({ requests, signals: [] }, config, stepContext(world, store));
    world.now += 40_000;
    const [command] = world.commands;
    const signal = {
      commandId: command?.commandId ?? "",
      instanceId: "i-0000000000000000a",
      documentName: "",
      status: "Success",
    };
    await Promise.all([
      stepOnce({ requests: [], signals: [signal] }, config, stepContext(world, store)),
      stepOnce({ requests, signals: [] }, config, stepContext(world, store)),
      stepOnce({ requests: [], signals: [signal] }, config, stepContext(world, store)),
    ]);
    world.now += 10_000;
    await stepOnce({ requests, signals: [] }, config, stepContext(world, store));
    expect(autoScaling.commandCalls(CompleteLifecycleActionCommand)).toHaveLength(1);
    expect(world.completionsOf("i-0000000000000000a")).toEqual(["CONTINUE"]);
  });

  /** Two launches that one install command serves, ended: `settle(id)` steps on the instance's command event. */
  async function oneCommandForTwo() {
    const addMetric = vi.spyOn(metrics, "addMetric");
    const store = memoryStore();
    const config = launchConfig();
    const [first = "", second = ""] = ids(2);
    const requests = toRequests(world.launch([first, second], { registerAfterMs: 0 }));
    await stepOnce({ requests, signals: [] }, config, stepContext(world, store));
    const [command] = world.commands;
    expect(command?.instanceIds).toEqual([first, second]);
    world.now += 40_000;
    const settle = (instanceId: string) => {
      const signal = { commandId: command?.commandId ?? "", instanceId, documentName: "", status: "Success" };
      return stepOnce({ requests: [], signals: [signal] }, config, stepContext(world, store));
    };
    const counted = (name: string) => addMetric.mock.calls.filter(([metric]) => metric === name).length;
    return { store, first, second, settle, counted };
  }

  it("counts every install of a command once when one read settles instances another invocation holds", async () => {
    const { first, second, settle, counted } = await oneCommandForTwo();
    // The first event's read settles both instances; the second event finds its launch done.
    await settle(first);
    world.now += 1_000;
    await settle(second);
    expect(reads()).toBe(1);
    expect(world.completionsOf(second)).toEqual(["CONTINUE"]);
    expect(counted(METRIC.installsSucceeded)).toBe(2);
    expect(counted(METRIC.verified)).toBe(2);
  });

  it("completes a launch whose end was read but whose completion is still to come when its command event arrives", async () => {
    const { store, first, second } = await oneCommandForTwo();
    const [command] = world.commands;
    const signal = (instanceId: string) => ({
      commandId: command?.commandId ?? "",
      instanceId,
      documentName: "",
      status: "Success",
    });
    // The first event's read settles both launches, but its invocation's budget is spent before a
    // completion goes out (as under a throttled burst): the first event must come back for it.
    const spent = await stepOnce(
      { requests: [], signals: [signal(first)] },
      launchConfig(),
      stepContext(world, store, 5),
    );
    expect(world.completionsOf(first)).toEqual([]);
    expect(world.completionsOf(second)).toEqual([]);
    expect([...spent.unread]).toEqual([first]);
    expect((await store.read([second])).get(second)?.phase).toBe("finishing");
    // The second launch's own event completes it; the first event, back, completes the first.
    world.now += 2_000;
    await stepOnce({ requests: [], signals: [signal(second)] }, launchConfig(), stepContext(world, store));
    expect(world.completionsOf(second)).toEqual(["CONTINUE"]);
    const back = await stepOnce(
      { requests: [], signals: [signal(first)] },
      launchConfig(),
      stepContext(world, store),
    );
    expect(world.completionsOf(first)).toEqual(["CONTINUE"]);
    expect(back.unread.size).toBe(0);
  });

  it("counts an install once when the invocation that read it first loses its write", async () => {
    const { store, first, second, settle, counted } = await oneCommandForTwo();
    // The second launch's record changes elsewhere while the first event's read settles it.
    const write = store.write.bind(store);
    store.write = async (record) => (record.instanceId === second ? false : write(record));
    await settle(first);
    store.write = write;
    world.now += 10_000;
    await settle(second);
    expect(world.completionsOf(second)).toEqual(["CONTINUE"]);
    expect(counted(METRIC.installsSucceeded)).toBe(2);
  });

  it("a cut-off invocation's install is found on the instance and followed, never sent twice", async () => {
    const store = memoryStore();
    const requests = toRequests(world.launch(["i-0000000000000000a"], { registerAfterMs: 0 }));
    const config = launchConfig();
    // The invocation is cut off right after SendCommand: its records are never written past `sending`.
    const write = store.write.bind(store);
    let cut = true;
    store.write = async (record) => (cut && record.phase === "installing" ? false : write(record));
    await stepOnce({ requests, signals: [] }, config, stepContext(world, store)).catch(() => undefined);
    cut = false;
    expect(sends()).toHaveLength(1);
    // Later deliveries (after that invocation's hard end) look the install up and follow it.
    for (let step = 0; step < 6; step += 1) {
      world.now += 20_000;
      await stepOnce({ requests, signals: [] }, config, stepContext(world, store));
    }
    expect(sends()).toHaveLength(1);
    expect(world.completionsOf("i-0000000000000000a")).toEqual(["CONTINUE"]);
  });

  it("sends no completion until its finishing step is stored, when the store is throttled once", async () => {
    const store = memoryStore();
    const requests = toRequests(world.launch(["i-0000000000000000a"], { registerAfterMs: 0 }));
    const config = launchConfig();
    // The first write of the `finishing` step fails as DynamoDB throttling would (a transient error).
    const write = store.write.bind(store);
    const stored: string[] = [];
    let throttled = false;
    store.write = async (record) => {
      if (record.phase === "finishing" && !throttled) {
        throttled = true;
        throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      }
      const won = await write(record);
      if (won) stored.push(record.phase);
      return won;
    };
    const completions = () => autoScaling.commandCalls(CompleteLifecycleActionCommand).length;
    let completedBeforeStored = false;
    autoScaling.on(CompleteLifecycleActionCommand).callsFake(() => {
      if (!stored.includes("finishing")) completedBeforeStored = true;
      return {};
    });
    for (let step = 0; step < 6 && completions() === 0; step += 1) {
      await stepOnce({ requests, signals: [] }, config, stepContext(world, store));
      world.now += 40_000;
    }
    expect(throttled).toBe(true);
    expect(completions()).toBe(1);
    expect(completedBeforeStored).toBe(false);
  });

  it("a late command event for a launch already done costs no SSM call", async () => {
    const store = memoryStore();
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"]), { store });
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    const before = reads();
    const [command] = world.commands;
    await driveQueue(world, [commandEvent(command?.commandId ?? "", "i-0000000000000000a", "Success")], {
      store,
    });
    expect(reads()).toBe(before);
  });
});

describe("launches of one instance", () => {
  it("never lets a late duplicate of an earlier launch replace the launch in hand", async () => {
    const store = memoryStore();
    const config = launchConfig();
    const [first] = world.launch(["i-0000000000000000a"], { registerAfterMs: 0 });
    const firstRun = await driveQueue(world, [first as object], { store });
    expect(firstRun.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    // The instance leaves its warm pool: a new launch, with a new token, ten minutes later.
    world.now += 600_000;
    const instance = world.instances.get("i-0000000000000000a");
    if (instance)
      Object.assign(instance, { lifecycleState: "Pending:Wait", actionOpen: true, outcomes: ["current"] });
    const second = { ...(first as { detail: object }), time: new Date(world.now).toISOString() };
    second.detail = { ...second.detail, LifecycleActionToken: "token-exit" };
    const requests = (event: object) => {
      const parsed = parseLaunchInput(event);
      return parsed === "test-notification" ? [] : parsed;
    };
    await stepOnce({ requests: requests(second), signals: [] }, config, stepContext(world, store));
    const sent = sends().length;
    // The first launch's event arrives again, late.
    world.now += 30_000;
    await stepOnce({ requests: requests(first as object), signals: [] }, config, stepContext(world, store));
    expect(sends()).toHaveLength(sent);
  });
});

describe("the sweep's look-ahead", () => {
  const lookAhead = (instanceId: string) => ({
    ...replayPayload({ instanceId, group: GROUP, hook: HOOK, startedAt: world.startOf(instanceId) }, "sweep"),
    ifEventLost: true,
  });
  const heartbeats = () => autoScaling.commandCalls(RecordLifecycleActionHeartbeatCommand).length;
  /** Delivers the look-ahead alone: it reports nothing and leaves the queue. */
  const expectDroppedQuietly = async (store: ReturnType<typeof memoryStore>) => {
    const report = await reconcileQueueBatch(
      { Records: [sqsRecord("m0", lookAhead("i-0000000000000000a"))] },
      (work) => stepOnce(work, launchConfig(), stepContext(world, store)),
      { LAUNCH_QUEUE_URL: "", RESUME_AFTER_SECONDS: 10 },
    );
    expect(report.instances).toEqual([]);
    expect(report.batchItemFailures).toEqual([]);
  };

  it("is dropped without a call when its launch's event arrived first", async () => {
    const store = memoryStore();
    const [event] = world.launch(["i-0000000000000000a"]);
    await stepOnce(
      { requests: requestsOf(event as object), signals: [] },
      launchConfig(),
      stepContext(world, store),
    );
    const before = { heartbeats: heartbeats(), sends: sends().length };
    await expectDroppedQuietly(store);
    expect({ heartbeats: heartbeats(), sends: sends().length }).toEqual(before);
  });

  it("takes up a launch whose event was lost and stays its message: registers, installs, continues", async () => {
    // Registered with SSM only after the look-ahead came: the look-ahead must come back for it.
    world.launch(["i-0000000000000000a"], { registerAfterMs: 45_000 });
    world.now += 20_000;
    const run = await driveQueue(world, [lookAhead("i-0000000000000000a")], { dropSignals: true });
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    expect(world.completionsOf("i-0000000000000000a")).toEqual(["CONTINUE"]);
    expect(world.installsOn("i-0000000000000000a")).toBe(1);
  });

  it("costs no Auto Scaling call when it comes back after a command event completed its launch", async () => {
    const store = memoryStore();
    world.launch(["i-0000000000000000a"]);
    world.now += 20_000;
    const run = await driveQueue(world, [lookAhead("i-0000000000000000a")], { store });
    expect(run.outcomes.get("i-0000000000000000a")?.outcome).toBe("CONTINUE");
    const before = autoScaling.calls().length;
    await expectDroppedQuietly(store);
    expect(autoScaling.calls().length).toBe(before);
  });

  it("gives way to its launch's event in the same batch, whose token the record keeps", async () => {
    const store = memoryStore();
    const [event] = world.launch(["i-0000000000000000a"]);
    await reconcileQueueBatch(
      { Records: [sqsRecord("m0", event), sqsRecord("m1", lookAhead("i-0000000000000000a"))] },
      (work) => stepOnce(work, launchConfig(), stepContext(world, store)),
      { LAUNCH_QUEUE_URL: "", RESUME_AFTER_SECONDS: 10 },
    );
    const record = (await store.read(["i-0000000000000000a"])).get("i-0000000000000000a");
    expect(record?.token).toBe("token-i-0000000000000000a");
    expect(heartbeats()).toBe(0);
  });
});

describe("the launch queue", () => {
  const batch = (...bodies: object[]) => ({
    Records: bodies.map((body, index) => sqsRecord(`m${index}`, body)),
  });

  it("skips a command event of a managed node (mi-) with a reason, instead of failing it into the DLQ", async () => {
    const event = commandEvent("c-1", "mi-0123456789abcdef0", "Success");
    const report = await reconcileQueueBatch(
      batch(event),
      (work) => stepOnce(work, launchConfig(), stepContext(world, memoryStore())),
      { LAUNCH_QUEUE_URL: "", RESUME_AFTER_SECONDS: 10 },
    );
    expect(report.skippedRecords).toEqual([
      { messageId: "m0", reason: "mi-0123456789abcdef0 is not an EC2 instance" },
    ]);
    expect(report.batchItemFailures).toEqual([]);
  });

  it("fails only the record an AWS error concerns; the rest of the batch goes on", async () => {
    const config = launchConfig({ TARGET_GROUPS: ["web-asg", "locked-asg"] });
    const [good] = world.launch(["i-0000000000000000a"], { registerAfterMs: 0 });
    const locked = { ...(good as { detail: object }) };
    locked.detail = {
      ...locked.detail,
      AutoScalingGroupName: "locked-asg",
      EC2InstanceId: "i-0000000000000000b",
    };
    autoScaling.on(DescribeLifecycleHooksCommand, { AutoScalingGroupName: "locked-asg" }).rejects(
      Object.assign(new Error("User is not authorized to perform: autoscaling:DescribeLifecycleHooks"), {
        name: "AccessDenied",
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const report = await reconcileQueueBatch(
      batch(good as object, locked),
      (work) => stepOnce(work, config, stepContext(world, memoryStore())),
      { LAUNCH_QUEUE_URL: "", RESUME_AFTER_SECONDS: 10 },
    );
    expect(report.failedRecords?.map((record) => record.messageId)).toEqual(["m1"]);
    expect(report.instances.map((outcome) => outcome.instanceId)).toEqual(["i-0000000000000000a"]);
    expect(sends()).toHaveLength(1);
  });
});

describe("the stage's install document", () => {
  it("names the version whose content is this release's on every SendCommand", async () => {
    await driveQueue(world, world.launch(["i-0000000000000000a"]));
    expect(sends().map((input) => input.DocumentVersion)).toEqual(["3"]);
  });

  it("sends nothing with a document changed outside the stack, and lets the launch in", async () => {
    ssm
      .on(GetDocumentCommand)
      .resolves({ Name: "x", DocumentVersion: "4", Content: '{"schemaVersion":"2.2","mainSteps":[]}' });
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"]), {
      config: launchConfig({ FAILURE_RESULT: "ABANDON" }),
    });
    expect(sends()).toHaveLength(0);
    expect(run.outcomes.get("i-0000000000000000a")).toMatchObject({ outcome: "CONTINUE", fault: "service" });
    expect(run.outcomes.get("i-0000000000000000a")?.reason).toContain(
      "does not hold this release's install document",
    );
  });
});

describe("an older agent's restart when CodeDeploy cannot answer", () => {
  const codeDeploy = mockClient(CodeDeployClient);
  afterAll(() => codeDeploy.restore());

  it("holds the restart for half an hour at most, then lets the launch in with the agent it has", async () => {
    const hooks = launchHook(GROUP, HOOK);
    autoScaling.on(DescribeLifecycleHooksCommand).resolves({
      LifecycleHooks: [
        ...(hooks.LifecycleHooks ?? []),
        {
          ...hooks.LifecycleHooks?.[0],
          LifecycleHookName: "CodeDeploy-managed-automatic-launch-deployment-hook-web-dg",
        },
      ],
    });
    codeDeploy
      .reset()
      .onAnyCommand()
      .rejects(Object.assign(new Error("not authorized"), { name: "AccessDeniedException" }));
    const run = await driveQueue(world, world.launch(["i-0000000000000000a"], { runningAgent: "1.6.0" }), {
      config: launchConfig({ FAILURE_RESULT: "ABANDON" }),
    });
    const outcome = run.outcomes.get("i-0000000000000000a");
    expect(outcome).toMatchObject({ outcome: "CONTINUE", fault: "service" });
    expect(outcome?.reason).toContain("the older agent was left running");
    expect(world.commands.every((command) => !command.allowRestart)).toBe(true);
  });
});
