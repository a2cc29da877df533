import { DescribeLifecycleHooksCommand } from "@aws-sdk/client-auto-scaling";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { type EventBridgeEvent, eventTime } from "../../sandbox/events/shapes.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { LEASE_TABLE, rateSeconds, type ServiceDeployment } from "../../sandbox/service.js";
import { ACCOUNT_ID } from "../../sandbox/world/service-error.js";
import type { StageConfigInput } from "../../stacks/config.js";
import { isScheduleRule } from "../../stacks/wiring.js";
import { sdkClients, testSandbox } from "./helpers.js";

/**
 * The sandbox deploys what stacks/wiring.ts describes, the description the stacks build from:
 * change a setting of the stage configuration and the sandbox's functions, queues, event source,
 * rules, schedule and hooks follow it. Queues and hooks are read back through the SDK.
 */
const GROUPS = ["web", "api"];
const DEFAULTS: StageConfigInput = { groups: GROUPS, deploymentGroups: ["shop/web-dg"] };
const CHANGED: StageConfigInput = {
  ...DEFAULTS,
  hook: { name: "custom-hook", heartbeatTimeoutSeconds: 1800, defaultResult: "CONTINUE" },
  launch: {
    timeoutSeconds: 120,
    memoryMb: 1024,
    visibilityTimeoutSeconds: 400,
    batchSize: 7,
    maxBatchingWindowSeconds: 2,
    maxConcurrency: 4,
    maxReceiveCount: 3,
  },
  failure: { retryAttempts: 1, maxEventAgeSeconds: 600, timeoutSeconds: 300, memoryMb: 256 },
  sweep: { schedule: "rate(7 minutes)", timeoutSeconds: 30 },
};

describe("the sandbox deploys the stacks' wiring", () => {
  let sandbox: Sandbox | undefined;
  afterEach(async () => {
    await sandbox?.close();
    sandbox = undefined;
  });

  async function deploy(input: StageConfigInput): Promise<ServiceDeployment> {
    sandbox = await testSandbox({ seed: "wiring" });
    for (const name of [...GROUPS, "other"]) {
      sandbox.world.autoScaling.createGroup({ name, image: { imageId: "ami-0sandbox" } });
    }
    return sandbox.deployService(input);
  }

  /** Every function, queue, event source, rule, schedule and hook of the description, as deployed. */
  async function expectDeployedAsDescribed(service: ServiceDeployment): Promise<void> {
    const { world, runtime, bus } = sandbox!;
    const { wiring } = service;
    const clients = sdkClients(sandbox!.endpoint);
    const queueUrl = (name: string) => world.sqs.queueUrl(name);

    for (const [key, fn] of Object.entries(wiring.functions)) {
      const deployed = runtime.functions.get(fn.name);
      if (key === "sweep" && !wiring.rules.sweep!.enabled) {
        expect(deployed, "a sweep whose schedule is off").toBeUndefined();
        continue;
      }
      expect(deployed?.spec, fn.name).toEqual({
        name: fn.name,
        module: fn.module,
        exportName: fn.exportName,
        timeoutSeconds: fn.timeoutSeconds,
        memoryMb: fn.memoryMb,
        reservedConcurrency: expect.any(Number),
        env: fn.environment({
          leaseTable: LEASE_TABLE,
          queueUrl: (queue) => queueUrl(wiring.queues[queue]!.name),
        }),
        ...(fn.asyncInvoke
          ? {
              asyncInvoke: {
                maximumRetryAttempts: fn.asyncInvoke.retryAttempts,
                maximumEventAgeSeconds: fn.asyncInvoke.maxEventAgeSeconds,
              },
            }
          : {}),
      });
    }

    for (const queue of Object.values(wiring.queues)) {
      const { Attributes } = await clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl(queue.name), AttributeNames: ["All"] }),
      );
      expect(Number(Attributes?.VisibilityTimeout), queue.name).toBe(queue.visibilityTimeoutSeconds ?? 30);
      const redrive = Attributes?.RedrivePolicy ? JSON.parse(Attributes.RedrivePolicy) : undefined;
      expect(redrive, queue.name).toEqual(
        queue.deadLetter && {
          deadLetterTargetArn: world.sqs.queue(wiring.queues[queue.deadLetter.queue]!.name).arn,
          maxReceiveCount: queue.deadLetter.maxReceiveCount,
        },
      );
    }

    expect(runtime.eventSourceMappings).toEqual(
      wiring.sqsSources.map((source) => ({
        functionName: wiring.functions[source.function]!.name,
        queueName: wiring.queues[source.queue]!.name,
        batchSize: source.batchSize,
        maximumBatchingWindowSeconds: source.maxBatchingWindowSeconds,
        reportBatchItemFailures: source.reportBatchItemFailures,
        maximumConcurrency: source.maxConcurrency,
      })),
    );
    // Lambda never runs more batches at once than the mapping's maximum concurrency.
    expect(service.launch.concurrency.limit).toBe(wiring.sqsSources[0]?.maxConcurrency);

    const rules = Object.values(wiring.rules).filter((rule) => rule.enabled);
    expect(bus.rules.map(({ name, pattern }) => ({ name, pattern }))).toEqual(
      rules.flatMap((rule) => (isScheduleRule(rule) ? [] : [{ name: rule.id, pattern: rule.pattern }])),
    );
    expect(runtime.schedules).toEqual(
      rules.filter(isScheduleRule).map((rule) => ({
        ruleName: rule.id,
        functionName: "function" in rule.target ? wiring.functions[rule.target.function]!.name : "",
        everySeconds: rateSeconds(rule.schedule),
      })),
    );

    for (const group of [...GROUPS, "other"]) {
      const { LifecycleHooks = [] } = await clients.autoScaling.send(
        new DescribeLifecycleHooksCommand({ AutoScalingGroupName: group }),
      );
      expect(
        LifecycleHooks.map((hook) => ({
          name: hook.LifecycleHookName,
          transition: hook.LifecycleTransition,
          heartbeatTimeoutSeconds: hook.HeartbeatTimeout,
          defaultResult: hook.DefaultResult,
        })),
        group,
      ).toEqual(
        wiring.lifecycleHooks
          .filter((hook) => hook.groups.includes(group))
          .map(({ name, transition, heartbeatTimeoutSeconds, defaultResult }) => ({
            name,
            transition,
            heartbeatTimeoutSeconds,
            defaultResult,
          })),
      );
    }
  }

  it("follows every changed setting of the configuration: queue, event source, rules, schedule, hooks and functions", async () => {
    const before = await deploy(DEFAULTS);
    await expectDeployedAsDescribed(before);
    const was = {
      visibility: before.launchQueue.visibilityTimeoutSeconds,
      maxReceiveCount: before.launchQueue.maxReceiveCount,
      mapping: sandbox!.runtime.eventSourceMappings[0],
      launchPattern: sandbox!.bus.rules[0]?.pattern,
      sweepEvery: sandbox!.runtime.schedules[0]?.everySeconds,
      failureRetries: before.failure.spec.asyncInvoke?.maximumRetryAttempts,
    };
    await sandbox!.close();

    const after = await deploy(CHANGED);
    await expectDeployedAsDescribed(after);
    // The settings moved from the defaults to the changed values, in the sandbox itself.
    expect(was).toMatchObject({
      // Event completion: 20 s invocations, a message back every few seconds while its launch runs.
      visibility: 30,
      maxReceiveCount: 100,
      // 20 batches of 50 at once: 1,000 instances, within a share of the account's concurrency.
      mapping: { batchSize: 50, maximumBatchingWindowSeconds: 2, maximumConcurrency: 20 },
      sweepEvery: 60,
      failureRetries: 2,
    });
    expect(after.launchQueue).toMatchObject({ visibilityTimeoutSeconds: 400, maxReceiveCount: 3 });
    expect(sandbox!.runtime.eventSourceMappings[0]).toMatchObject({
      batchSize: 7,
      maximumBatchingWindowSeconds: 2,
      maximumConcurrency: 4,
    });
    // The stage's hook, and the previous release's default name, still recognised.
    expect(was.launchPattern?.detail?.LifecycleHookName).toEqual([
      "agentfix-sandbox-codedeploy-agent-hook",
      "agentfix-sandbox-install-codedeploy-agent",
    ]);
    expect(sandbox!.bus.rules[0]?.pattern.detail?.LifecycleHookName).toEqual(["custom-hook"]);
    expect(sandbox!.runtime.schedules[0]?.everySeconds).toBe(420);
    expect(after.failure.spec.asyncInvoke).toEqual({ maximumRetryAttempts: 1, maximumEventAgeSeconds: 600 });
    expect(after.launch.spec).toMatchObject({ timeoutSeconds: 120, memoryMb: 1024 });
    expect(after.launch.spec.env?.LIFECYCLE_HOOK_NAME).toBe("custom-hook");
  });

  it("leaves the hooks to the groups and runs no sweep when the configuration says so", async () => {
    const service = await deploy({ ...DEFAULTS, hook: { managedBy: "group" }, sweep: { enabled: false } });
    await expectDeployedAsDescribed(service);
    expect(service.wiring.lifecycleHooks).toEqual([]);
    expect(service.sweep).toBeUndefined();
    expect(sandbox!.runtime.schedules).toEqual([]);
  });

  it("sends the launch events of the groups in scope to the launch queue, and no others", async () => {
    const service = await deploy(CHANGED);
    const { world } = sandbox!;
    const launchEvent = (group: string, id: string): EventBridgeEvent => ({
      version: "0",
      id,
      "detail-type": "EC2 Instance-launch Lifecycle Action",
      source: "aws.autoscaling",
      account: ACCOUNT_ID,
      time: eventTime(world.now()),
      region: world.region,
      resources: [],
      detail: {
        LifecycleActionToken: id,
        AutoScalingGroupName: group,
        LifecycleHookName: "custom-hook",
        EC2InstanceId: "i-0123456789abcdef0",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
      },
    });
    world.publishEvent(launchEvent("web", "b1a6a0f4-0000-4000-8000-000000000001"));
    world.publishEvent(launchEvent("other", "b1a6a0f4-0000-4000-8000-000000000002"));
    expect(await sandbox!.waitFor(() => service.launchQueue.sent > 0, { timeoutSeconds: 60 })).toBe(true);
    expect(service.launchQueue.sent).toBe(1);
    expect(sandbox!.bus.ruleStats[service.wiring.rules.launch!.id]).toMatchObject({ matched: 1 });
  });

  it("deploys a second stage beside the first with resources of its own, each on its own groups", async () => {
    const dev = await deploy({ groups: ["web"] });
    const prod = await sandbox!.deployService({ groups: ["api"] }, { stage: "prod" });
    const { world, runtime, bus } = sandbox!;
    const names = (service: ServiceDeployment) => [
      ...Object.values(service.wiring.queues).map((queue) => queue.name),
      service.leaseTable,
      ...Object.values(service.wiring.functions).map((fn) => fn.name),
      ...Object.values(service.wiring.documents).map((document) => document.name),
    ];
    // Nothing of one stage is the other's: queues, lease table, functions, documents.
    expect(names(prod).filter((name) => names(dev).includes(name))).toEqual([]);
    expect(names(prod).every((name) => name.includes("prod"))).toBe(true);
    expect(world.sqs.queue(prod.launchQueue.name)).toBe(prod.launchQueue);
    expect(world.sqs.queue(dev.launchQueue.name)).toBe(dev.launchQueue);
    expect(world.dynamodb.tables.has(prod.leaseTable) && world.dynamodb.tables.has(LEASE_TABLE)).toBe(true);
    expect(prod.launch.spec.env?.LAUNCH_QUEUE_URL).toBe(world.sqs.queueUrl(prod.launchQueue.name));
    expect(new Set(bus.rules.map((rule) => rule.name)).size).toBe(bus.rules.length);
    expect(new Set(runtime.schedules.map((schedule) => schedule.ruleName)).size).toBe(
      runtime.schedules.length,
    );
    // Each stage's hook is on its own groups only.
    expect([...world.autoScaling.group("web").hooks.keys()]).toEqual([dev.config.hook.name]);
    expect([...world.autoScaling.group("api").hooks.keys()]).toEqual([prod.config.hook.name]);
    await expect(sandbox!.deployService({ groups: ["other"] }, { stage: "prod" })).rejects.toThrow(
      /already deployed/,
    );
  });

  it("deploys only the paths a stage names: no failure path without deploymentGroups, no launch path without groups", async () => {
    const launchOnly = await deploy({ groups: GROUPS });
    expect(launchOnly.has).toEqual({ launch: true, failure: false });
    expect(Object.keys(launchOnly.wiring.functions).sort()).toEqual(["launch", "sweep"]);
    expect(sandbox!.runtime.functions.has("agentfix-sandbox-deployment-failure")).toBe(false);
    expect(() => launchOnly.failure).toThrow(/deploys no failure function: it names no deploymentGroups/);
    expect(sandbox!.bus.rules.map((rule) => rule.name)).not.toContain("DeploymentFailureRule");
    await sandbox!.close();

    const failureOnly = await deploy({ deploymentGroups: ["shop/web-dg"] });
    expect(failureOnly.has).toEqual({ launch: false, failure: true });
    expect(Object.keys(failureOnly.wiring.functions)).toEqual(["failure"]);
    expect(failureOnly.wiring.lifecycleHooks).toEqual([]);
    expect(sandbox!.runtime.schedules).toEqual([]);
    expect(() => failureOnly.launchQueue).toThrow(/deploys no launch queue: it names no groups/);
    expect(failureOnly.failure.spec.env?.TARGET_DEPLOYMENT_GROUPS).toBe("shop/web-dg");
  });

  it("refuses to deploy a stage whose pinned agent version the sandbox's Distributor does not publish", async () => {
    sandbox = await testSandbox({ seed: "wiring" });
    sandbox.world.autoScaling.createGroup({ name: "web", image: { imageId: "ami-0sandbox" } });
    await expect(
      sandbox.deployService({ groups: ["web"], agent: { version: "1.8.9" } }, { stage: "dev" }),
    ).rejects.toThrow(/agent\.version: AWSCodeDeployAgent 1\.8\.9 is not published/);
    // A published pin deploys.
    const pinned = await sandbox.deployService(
      { groups: ["web"], agent: { version: "1.8.1" } },
      { stage: "qa" },
    );
    expect(pinned.launch.spec.env?.AGENT_VERSION).toBe("1.8.1");
  });
});
