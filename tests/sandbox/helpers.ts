import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CodeDeployClient } from "@aws-sdk/client-codedeploy";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { SSMClient } from "@aws-sdk/client-ssm";
import { expect } from "vitest";
import { clock } from "../../functions/core/common/clock.js";
import { createSandbox, type Sandbox, type SandboxOptions } from "../../sandbox/sandbox.js";

/** SDK clients of this test (not the handlers'), pointed at the sandbox, without retries. */
export function sdkClients(endpoint: string) {
  const config = {
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  };
  return {
    ssm: new SSMClient(config),
    autoScaling: new AutoScalingClient(config),
    codeDeploy: new CodeDeployClient(config),
    dynamodb: new DynamoDBClient(config),
    sqs: new SQSClient(config),
  };
}

/** A sandbox whose world runs fast and predictably: fixed delays unless a test says otherwise. */
export function testSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  return createSandbox({
    clockScale: 0.002,
    ...options,
    world: {
      ...options.world,
      ssm: {
        deliverySeconds: 1,
        visibilitySeconds: 1,
        installSeconds: 20,
        scriptSeconds: 2,
        ...options.world?.ssm,
      },
      autoScaling: { bootSeconds: 1, proceedSeconds: 1, terminateSeconds: 5, ...options.world?.autoScaling },
      codeDeploy: { agentPickupSeconds: 1, launchDeploymentDelaySeconds: 1, ...options.world?.codeDeploy },
    },
  });
}

/** Waits `seconds` of AWS time. */
export const pass = (seconds: number) => clock.sleep(seconds * 1000);

/** Expects an SDK call to fail the way AWS fails it: exception name, HTTP status and message. */
export async function expectAwsError(
  call: Promise<unknown>,
  name: string,
  status: number,
  message?: string | RegExp,
): Promise<void> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, `expected ${name}`).toBeInstanceOf(Error);
  const failure = error as Error & { $metadata?: { httpStatusCode?: number } };
  expect(failure.name).toBe(name);
  expect(failure.$metadata?.httpStatusCode).toBe(status);
  if (message !== undefined) {
    if (typeof message === "string") expect(failure.message).toBe(message);
    else expect(failure.message).toMatch(message);
  }
}

export const REVISION = {
  revisionType: "S3",
  s3Location: { bucket: "releases", key: "shop/shop-1.4.2.zip", bundleType: "zip" },
} as const;

/**
 * A harm the launch path is known to do (reported, not fixed here): its install document's deployment
 * guard looks for a lifecycle event in progress (the agent's ongoing-deployment file), and between two
 * events of CodeDeploy's launch deployment there is none, so an install that lands in that gap, on an
 * instance whose AMI starts an outdated agent at boot, restarts the agent under the deployment. Whether
 * an install lands in a gap depends on timing, so a run may or may not show it; every other harm must
 * be 0. Remove this once the launch path also asks CodeDeploy whether a deployment runs there.
 */
export function isKnownGapRestart(item: { kind: string; detail: string }): boolean {
  return (
    item.kind === "restart-during-deployment" &&
    item.detail.endsWith("between lifecycle events") &&
    /by agentfix-[A-Za-z0-9-]+-install-codedeploy-agent /.test(item.detail)
  );
}

/** The name of the check every scenario adds for the harm figure. */
export const HARM_CHECK = /^first, do no harm/;
