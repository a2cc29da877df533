import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { addSqsEventSource, SqsSourceConfigError } from "../../sandbox/runtime/sqs-source.js";
import type { Sandbox } from "../../sandbox/sandbox.js";
import { testSandbox } from "./helpers.js";

const PROBE = resolve(import.meta.dirname, "fixtures/probe-handler.ts");

describe("Lambda emulation", () => {
  let sandbox: Sandbox;
  afterEach(() => sandbox.close());

  it("gives the handler a context whose remaining time follows the timeout on the AWS clock", async () => {
    sandbox = await testSandbox({ seed: "runtime-1" });
    const fn = await sandbox.runtime.deploy({ name: "probe", module: PROBE, timeoutSeconds: 120 });
    const first = await sandbox.runtime.invoke(fn, {});
    expect(first.ok).toBe(true);
    // Less the AWS time the first import took (the clock runs fast, so a loaded machine shows here).
    expect((first.result as { remainingMs: number }).remainingMs).toBeGreaterThan(100_000);
    expect((first.result as { functionName: string }).functionName).toBe("probe");
    const slept = await sandbox.runtime.invoke(fn, { action: "sleep", sleepMs: 60_000 });
    // 60 s slept of 120: what is left is under 60 s (less the time the call itself took).
    expect((slept.result as { remainingMs: number }).remainingMs).toBeLessThanOrEqual(60_000);
    expect((slept.result as { remainingMs: number }).remainingMs).toBeGreaterThan(0);
    // The runtime tags the handler's calls, so they are counted per function.
    expect(sandbox.counters.byCaller.probe?.["SSM.DescribeInstanceInformation"]).toBe(1);
  });

  it("cuts an invocation off at its timeout and freezes its later AWS calls", async () => {
    sandbox = await testSandbox({ seed: "runtime-2" });
    const fn = await sandbox.runtime.deploy({ name: "probe", module: PROBE, timeoutSeconds: 30 });
    const result = await sandbox.runtime.invoke(fn, { action: "sleep", sleepMs: 40_000 });
    expect(result).toMatchObject({
      ok: false,
      timedOut: true,
      error: { errorMessage: "Task timed out after 30.00 seconds" },
    });
    await sandbox.waitFor(() => false, { timeoutSeconds: 20, pollSeconds: 5 });
    // The handler woke after its timeout, but its SSM call never reached the service.
    expect(sandbox.counters.calls["SSM.DescribeInstanceInformation"]).toBeUndefined();
    expect(fn.stats.timeouts).toBe(1);
  });

  it("records each invocation's billed duration in AWS time and its memory, the whole timeout for a cut-off one", async () => {
    sandbox = await testSandbox({ seed: "runtime-billing" });
    const fn = await sandbox.runtime.deploy({
      name: "probe",
      module: PROBE,
      timeoutSeconds: 30,
      memoryMb: 1024,
    });
    const slept = await sandbox.runtime.invoke(fn, { action: "sleep", sleepMs: 10_000 });
    const cutOff = await sandbox.runtime.invoke(fn, { action: "sleep", sleepMs: 40_000 });
    expect(slept.billedDurationMs).toBeGreaterThanOrEqual(10_000);
    // Under the compressed test clock the SSM call after the sleep takes a few AWS seconds too.
    expect(slept.billedDurationMs).toBeLessThan(30_000);
    expect(slept.billedDurationMs).toBe(Math.ceil(slept.endedAt - slept.startedAt));
    expect(cutOff.billedDurationMs).toBeGreaterThanOrEqual(30_000);
    expect(cutOff.billedDurationMs).toBeLessThan(31_000);
    expect(fn.invocations.map((invocation) => invocation.memoryMb)).toEqual([1024, 1024]);
  });

  it("retries a failed asynchronous event twice, one and two minutes apart, then sends it to the failure destination", async () => {
    sandbox = await testSandbox({ seed: "runtime-3" });
    const fn = await sandbox.runtime.deploy({ name: "probe", module: PROBE, timeoutSeconds: 10 });
    sandbox.runtime.invokeAsync(fn, { action: "fail" });
    await sandbox.waitFor(() => fn.failureDestination.length > 0, { timeoutSeconds: 600, pollSeconds: 5 });
    expect(fn.invocations).toHaveLength(3);
    const gaps = fn.invocations
      .slice(1)
      .map((invocation, index) => (invocation.startedAt - fn.invocations[index]!.endedAt) / 1000);
    expect(gaps[0]).toBeGreaterThanOrEqual(59);
    expect(gaps[0]).toBeLessThan(100);
    expect(gaps[1]).toBeGreaterThanOrEqual(119);
    expect(gaps[1]).toBeLessThan(160);
    expect(fn.failureDestination[0]).toMatchObject({
      requestContext: { condition: "RetriesExhausted", approximateInvokeCount: 3 },
      requestPayload: { action: "fail" },
      responsePayload: { errorType: "RangeError", errorMessage: "asked to fail" },
    });
  });

  it("follows the function's asynchronous-invoke configuration: fewer retries, and none once the event is too old", async () => {
    sandbox = await testSandbox({ seed: "runtime-async" });
    const once = await sandbox.runtime.deploy({
      name: "probe-once",
      module: PROBE,
      timeoutSeconds: 10,
      asyncInvoke: { maximumRetryAttempts: 0 },
    });
    // Retried after one minute (the event is then about a minute old), not after two more.
    const young = await sandbox.runtime.deploy({
      name: "probe-young",
      module: PROBE,
      timeoutSeconds: 10,
      asyncInvoke: { maximumRetryAttempts: 2, maximumEventAgeSeconds: 90 },
    });
    sandbox.runtime.invokeAsync(once, { action: "fail" });
    sandbox.runtime.invokeAsync(young, { action: "fail" });
    await sandbox.waitFor(() => once.failureDestination.length > 0 && young.failureDestination.length > 0, {
      timeoutSeconds: 600,
      pollSeconds: 5,
    });
    expect(once.invocations).toHaveLength(1);
    expect(once.failureDestination[0]?.requestContext).toMatchObject({
      condition: "RetriesExhausted",
      approximateInvokeCount: 1,
    });
    expect(young.invocations).toHaveLength(2);
    expect(young.failureDestination[0]?.requestContext).toMatchObject({
      condition: "EventAgeExceeded",
      approximateInvokeCount: 2,
    });
  });

  it("delivers SQS batches, deletes what succeeded, redelivers item failures and dead-letters after maxReceiveCount", async () => {
    sandbox = await testSandbox({ seed: "runtime-4" });
    const { world } = sandbox;
    world.sqs.createQueue({ name: "dlq" });
    const queue = world.sqs.createQueue({
      name: "work",
      visibilityTimeoutSeconds: 60,
      maxReceiveCount: 2,
      deadLetterQueueName: "dlq",
    });
    const fn = await sandbox.runtime.deploy({
      name: "probe",
      module: PROBE,
      timeoutSeconds: 30,
      reservedConcurrency: 1,
    });
    expect(() =>
      addSqsEventSource(
        sandbox.runtime,
        world,
        fn,
        world.sqs.createQueue({ name: "short", visibilityTimeoutSeconds: 10 }),
      ),
    ).toThrow(SqsSourceConfigError);
    const stats = addSqsEventSource(sandbox.runtime, world, fn, queue, {
      batchSize: 10,
      maximumBatchingWindowSeconds: 5,
    });
    for (const body of ["ok-1", "ok-2", "fail-1"]) world.sqs.sendMessage(queue, body);
    await sandbox.waitFor(() => world.sqs.queue("dlq").messages.length === 1, {
      timeoutSeconds: 600,
      pollSeconds: 5,
    });
    expect(stats.messagesDeleted).toBe(2);
    expect(stats.itemFailures).toBe(2);
    expect(world.sqs.queue("dlq").messages[0]!.body).toBe("fail-1");
    expect(queue.messages).toHaveLength(0);
    const results = fn.invocations.map(
      (invocation) => invocation.result as { receiveCounts: string[]; eventSources: string[] },
    );
    expect(results[0]!.receiveCounts.sort()).toEqual(["fail-1:1", "ok-1:1", "ok-2:1"]);
    expect(results[1]!.receiveCounts).toEqual(["fail-1:2"]);
    expect(results[0]!.eventSources).toEqual([queue.arn]);
  });
});
