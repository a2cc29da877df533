import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSandbox, type Sandbox } from "../../sandbox/sandbox.js";
import { LEASE_TABLE, rateSeconds, type ServiceDeployment } from "../../sandbox/service.js";
import { type SynthesizedStage, synthesizeStage } from "../../scripts/synthesize.js";
import type { StageConfigInput } from "../../stacks/config.js";
import type { FunctionWiring, ServiceWiring } from "../../stacks/wiring.js";
import { flatten, type Resource, resources } from "./template-helpers.js";

/**
 * The stacks and the sandbox deploy one description (stacks/wiring.ts). For two stage
 * configurations, the synthesized templates and the sandbox deployment agree on each function's
 * name, handler, timeout, memory and environment, the queues' visibility timeout and redrive
 * policy, the SQS event source, the rule patterns and the schedule, the asynchronous-invoke
 * policies and the lifecycle hooks.
 */
const STAGES: { stage: string; input: StageConfigInput; bundle: boolean }[] = [
  {
    stage: "prod",
    // Bundled, as for a deploy; without a bundle SST gives every function a placeholder handler,
    // which the other stage's test then leaves out (the handlers do not depend on the configuration).
    bundle: true,
    input: {
      groups: ["web-prod", "api-prod"],
      deploymentGroups: ["billing/billing-prod", "catalog/catalog-prod"],
      hook: { heartbeatTimeoutSeconds: 1800, defaultResult: "CONTINUE" },
      launch: {
        timeoutSeconds: 240,
        memoryMb: 1024,
        batchSize: 20,
        maxBatchingWindowSeconds: 3,
        maxConcurrency: 8,
        maxReceiveCount: 4,
      },
      failure: { retryAttempts: 1, maxEventAgeSeconds: 900, memoryMb: 768 },
      sweep: { schedule: "rate(10 minutes)", staleAfterSeconds: 600 },
    },
  },
  // Every group and deployment group, said on purpose ("*"): hooks left to the groups, and the sweep
  // switched off.
  {
    stage: "qa",
    input: { groups: ["*"], deploymentGroups: ["*"], dryRun: true, sweep: { enabled: false } },
    bundle: false,
  },
];

const synthesized = new Map<string, SynthesizedStage>();
const saved = { file: process.env.AGENTFIX_CONFIG_FILE, config: process.env.AGENTFIX_CONFIG };

beforeAll(async () => {
  // Only the configuration given here: no agentfix.config.json from the working directory.
  process.env.AGENTFIX_CONFIG_FILE = "/nonexistent/agentfix.config.json";
  for (const { stage, input, bundle } of STAGES) {
    process.env.AGENTFIX_CONFIG = JSON.stringify(input);
    synthesized.set(stage, await synthesizeStage({ stage, bundle, nag: false }));
  }
}, 300_000);

afterAll(() => {
  for (const [name, value] of [
    ["AGENTFIX_CONFIG_FILE", saved.file],
    ["AGENTFIX_CONFIG", saved.config],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

interface Found {
  resource: Resource;
  template: Record<string, unknown>;
}

function all(stage: SynthesizedStage, type: string): Found[] {
  return stage.stacks.flatMap((stack) =>
    resources(stack.template, type).map((resource) => ({ resource, template: stack.template })),
  );
}

/** The one resource of `type` of any stack whose logical id starts with `id`. */
function one(stage: SynthesizedStage, type: string, id: string): Found {
  const found = all(stage, type).filter(({ resource }) => resource.id.startsWith(id));
  expect(
    found.map(({ resource }) => resource.id),
    `${type} ${id}`,
  ).toHaveLength(1);
  return found[0]!;
}

function properties({ resource, template }: Found): Record<string, unknown> {
  return flatten(resource.Properties, template) as Record<string, unknown>;
}

function functionNamed(wiring: ServiceWiring, name: string): FunctionWiring {
  const fn = Object.values(wiring.functions).find((candidate) => candidate.name === name);
  if (!fn) throw new Error(`no function ${name} in the wiring`);
  return fn;
}

function queueIdNamed(wiring: ServiceWiring, name: string): string {
  const queue = Object.values(wiring.queues).find((candidate) => candidate.name === name);
  if (!queue) throw new Error(`no queue ${name} in the wiring`);
  return queue.id;
}

describe.each(STAGES)(
  "stage $stage: the stacks and the sandbox deploy the same wiring",
  ({ stage, input, bundle }) => {
    let sandbox: Sandbox;
    let service: ServiceDeployment;
    let template: SynthesizedStage;

    beforeAll(async () => {
      template = synthesized.get(stage)!;
      sandbox = await createSandbox({ seed: `agreement-${stage}` });
      for (const name of (input.groups ?? []).filter((group) => group !== "*")) {
        sandbox.world.autoScaling.createGroup({ name, image: { imageId: "ami-0sandbox" } });
      }
      service = await sandbox.deployService(input, { stage });
    }, 60_000);

    afterAll(() => sandbox?.close());

    it("deploys each function with the same name, handler, timeout, memory and environment", () => {
      const { wiring } = service;
      for (const [key, fn] of Object.entries(wiring.functions)) {
        const found = one(template, "AWS::Lambda::Function", fn.id);
        const deployed = sandbox.runtime.functions.get(fn.name);
        if (!deployed) {
          // Only a function a disabled schedule alone invokes stays out of the sandbox.
          expect(key).toBe("sweep");
          expect(properties(one(template, "AWS::Events::Rule", wiring.rules.sweep!.id)).State).toBe(
            "DISABLED",
          );
          continue;
        }
        const cloud = properties(found);
        expect({
          name: cloud.FunctionName,
          handler: bundle ? cloud.Handler : "(not bundled)",
          timeoutSeconds: cloud.Timeout,
          memoryMb: cloud.MemorySize,
        }).toEqual({
          name: deployed.spec.name,
          // The module's pre-built bundle, dist/functions/<module name>/index.mjs, is the asset's root.
          handler: bundle ? `index.${deployed.spec.exportName}` : "(not bundled)",
          timeoutSeconds: deployed.spec.timeoutSeconds,
          memoryMb: deployed.spec.memoryMb,
        });

        const cloudEnvironment = (cloud.Environment as { Variables: Record<string, string> }).Variables;
        const sandboxEnvironment = deployed.spec.env ?? {};
        // Markers in place of the resources show which variables point at one.
        const markers = fn.environment({
          leaseTable: "@LeaseTable",
          queueUrl: (queue) => `@${wiring.queues[queue]!.id}`,
        });
        expect(Object.keys(sandboxEnvironment).sort()).toEqual(Object.keys(markers).sort());
        // Beyond the wiring's variables the stacks add only the Powertools settings and SST its
        // own; the sandbox keeps its logging quiet and runs no SST code.
        expect(
          Object.keys(cloudEnvironment).filter(
            (name) =>
              !(name in markers) && !/^(POWERTOOLS_|SST_|AWS_NODEJS_CONNECTION_REUSE_ENABLED$)/.test(name),
          ),
        ).toEqual([]);
        for (const [name, marker] of Object.entries(markers)) {
          if (!marker.startsWith("@")) {
            expect(cloudEnvironment[name], name).toBe(sandboxEnvironment[name]);
            continue;
          }
          const id = marker.slice(1);
          expect(cloudEnvironment[name], name).toContain(id);
          const queue = Object.values(wiring.queues).find((candidate) => candidate.id === id);
          expect(sandboxEnvironment[name], name).toBe(
            queue ? sandbox.world.sqs.queueUrl(queue.name) : LEASE_TABLE,
          );
        }
      }
    });

    it("gives each queue the same visibility timeout and redrive policy", () => {
      const { wiring } = service;
      for (const queue of Object.values(wiring.queues)) {
        const cloud = properties(one(template, "AWS::SQS::Queue", queue.id));
        const local = sandbox.world.sqs.queue(queue.name);
        // CloudFormation leaves an unset visibility timeout to SQS, whose default is 30 seconds.
        expect(cloud.VisibilityTimeout ?? 30, queue.id).toBe(local.visibilityTimeoutSeconds);
        const redrive = cloud.RedrivePolicy as
          | { deadLetterTargetArn: string; maxReceiveCount: number }
          | undefined;
        expect(redrive?.maxReceiveCount, queue.id).toBe(local.maxReceiveCount);
        if (local.deadLetterQueueName) {
          expect(redrive?.deadLetterTargetArn).toContain(queueIdNamed(wiring, local.deadLetterQueueName));
        } else {
          expect(redrive).toBeUndefined();
        }
      }
    });

    it("feeds each function from its queue with the same event source settings", () => {
      const { wiring } = service;
      const cloud = all(template, "AWS::Lambda::EventSourceMapping").map(properties);
      const local = sandbox.runtime.eventSourceMappings;
      expect(cloud).toHaveLength(local.length);
      for (const mapping of local) {
        const functionId = functionNamed(wiring, mapping.functionName).id;
        const found = cloud.filter((candidate) => String(candidate.FunctionName).includes(functionId));
        expect(found, functionId).toHaveLength(1);
        expect(found[0]).toMatchObject({
          FunctionName: expect.stringContaining(functionId),
          EventSourceArn: expect.stringContaining(queueIdNamed(wiring, mapping.queueName)),
          BatchSize: mapping.batchSize,
          MaximumBatchingWindowInSeconds: mapping.maximumBatchingWindowSeconds,
          FunctionResponseTypes: mapping.reportBatchItemFailures ? ["ReportBatchItemFailures"] : undefined,
          ScalingConfig: { MaximumConcurrency: mapping.maximumConcurrency },
        });
      }
    });

    it("matches events with the same patterns and runs the sweep on the same schedule", () => {
      const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
      const rules: ({ id: string } & Record<string, unknown>)[] = all(template, "AWS::Events::Rule")
        .map((found) => ({ id: found.resource.id, ...properties(found) }))
        .sort(byId);
      const patterns = rules.filter((rule) => rule.EventPattern && rule.State === "ENABLED");
      expect(patterns.map((rule) => ({ id: rule.id, pattern: rule.EventPattern }))).toEqual(
        sandbox.bus.rules
          .map((rule) => ({ id: rule.name, pattern: rule.pattern }))
          .sort(byId)
          .map((rule) => ({ ...rule, id: expect.stringMatching(new RegExp(`^${rule.id}`)) })),
      );

      const schedules = rules.filter((rule) => rule.ScheduleExpression && rule.State === "ENABLED");
      expect(
        schedules.map((rule) => ({
          id: rule.id,
          everySeconds: rateSeconds(String(rule.ScheduleExpression)),
          target: (rule.Targets as { Arn: string }[])[0]?.Arn,
        })),
      ).toEqual(
        sandbox.runtime.schedules.map((schedule) => ({
          id: expect.stringMatching(new RegExp(`^${schedule.ruleName}`)),
          everySeconds: schedule.everySeconds,
          target: expect.stringContaining(functionNamed(service.wiring, schedule.functionName).id),
        })),
      );
    });

    it("retries asynchronous invocations on the same policies", () => {
      const { wiring } = service;
      const cloud = all(template, "AWS::Lambda::EventInvokeConfig").map(properties);
      const local = [...sandbox.runtime.functions.values()].filter((fn) => fn.spec.asyncInvoke);
      const deployedIds = [...sandbox.runtime.functions.keys()].map((name) => functionNamed(wiring, name).id);
      expect(
        cloud
          .filter((config) => deployedIds.some((id) => String(config.FunctionName).includes(id)))
          .map((config) => ({
            function: config.FunctionName,
            maximumRetryAttempts: config.MaximumRetryAttempts,
            maximumEventAgeSeconds: config.MaximumEventAgeInSeconds,
          })),
      ).toEqual(
        local.map((fn) => ({
          function: expect.stringContaining(functionNamed(wiring, fn.spec.name).id),
          ...fn.spec.asyncInvoke,
        })),
      );
    });

    it("puts the same lifecycle hooks on the same groups", () => {
      const cloud = all(template, "AWS::AutoScaling::LifecycleHook").map((found) => {
        const hook = properties(found);
        return {
          group: hook.AutoScalingGroupName,
          name: hook.LifecycleHookName,
          transition: hook.LifecycleTransition,
          heartbeatTimeoutSeconds: hook.HeartbeatTimeout,
          defaultResult: hook.DefaultResult,
        };
      });
      const local = (input.groups ?? [])
        .filter((group) => group !== "*")
        .flatMap((group) =>
          [...sandbox.world.autoScaling.group(group).hooks.values()].map((hook) => ({
            group,
            name: hook.name,
            transition: hook.transition,
            heartbeatTimeoutSeconds: hook.heartbeatTimeout,
            defaultResult: hook.defaultResult,
          })),
        );
      expect(local).toEqual(cloud);
      expect(local).toHaveLength((input.groups ?? []).filter((group) => group !== "*").length);
    });
  },
);
