// Every AWS client the functions use, created once per container from one configuration.
// Throttling and 5xx answers are retried by the SDK with capped exponential backoff and full jitter;
// what still fails after MAX_ATTEMPTS reaches the caller, which leaves the work for the next poll or
// the next delivery. The delay is computed in AWS time so the sandbox's compressed clock stays faithful.
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { CodeDeployClient } from "@aws-sdk/client-codedeploy";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { SSMClient } from "@aws-sdk/client-ssm";
import { ConfiguredRetryStrategy } from "@smithy/util-retry";
import { clock } from "./clock.js";
import { traced } from "./powertools.js";

const MAX_ATTEMPTS = Number(process.env.AWS_MAX_ATTEMPTS ?? "5") || 5;
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 10_000;

export function backoffDelay(attempt: number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

function clientConfig(maxAttempts = MAX_ATTEMPTS) {
  return {
    region: process.env.AWS_REGION ?? "us-east-1",
    retryStrategy: new ConfiguredRetryStrategy(maxAttempts, (attempt: number) =>
      clock.toReal(backoffDelay(attempt)),
    ),
  };
}

// Annotated pure so that esbuild leaves out the clients (and SDK packages) a function does not use:
// each function's bundle holds only its own clients, which keeps its size and cold start down.
export const ssm = /* @__PURE__ */ traced(/* @__PURE__ */ new SSMClient(/* @__PURE__ */ clientConfig()));
export const autoScaling = /* @__PURE__ */ traced(
  /* @__PURE__ */ new AutoScalingClient(/* @__PURE__ */ clientConfig()),
);
/**
 * Lifecycle completions and heartbeats: one call per instance, which a scale-out sends by the
 * hundred while Auto Scaling throttles them. The SDK's quick retries would mostly meet the same
 * throttle; the caller retries them instead, spaced out (launch/lifecycle.ts, lifecycleCalls).
 */
export const autoScalingLifecycle = /* @__PURE__ */ traced(
  /* @__PURE__ */ new AutoScalingClient(/* @__PURE__ */ clientConfig(1)),
);
export const codeDeploy = /* @__PURE__ */ traced(
  /* @__PURE__ */ new CodeDeployClient(/* @__PURE__ */ clientConfig()),
);
export const dynamodb = /* @__PURE__ */ traced(
  /* @__PURE__ */ new DynamoDBClient(/* @__PURE__ */ clientConfig()),
);
export const sqs = /* @__PURE__ */ traced(/* @__PURE__ */ new SQSClient(/* @__PURE__ */ clientConfig()));
