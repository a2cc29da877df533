import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { clock } from "./core/common/clock.js";
import { dynamoLease } from "./core/common/lease.js";
import { logger, metrics, tracer } from "./core/common/powertools.js";
import { loadFailureConfig } from "./core/config.js";
import { type FailureReport, handleDeploymentFailure } from "./core/deployment-failure.js";
import { parseDeploymentFailureInput } from "./schemas/deployment-failure.js";

const config = loadFailureConfig();
const lease = dynamoLease(config.LEASE_TABLE);

/**
 * A CodeDeploy deployment failed (EventBridge, asynchronous invocation) or an operator replays one
 * (`{"deploymentId":"d-..."}`): upgrade the agent where it is to blame and deploy the same revision
 * again. Errors are rethrown so Lambda's asynchronous retries and the failure destination apply.
 */
export async function deploymentFailure(event: unknown, context: Context): Promise<FailureReport> {
  const input = parseDeploymentFailureInput(event);
  logger.appendKeys({ deploymentId: input.deploymentId, trigger: input.source });
  return handleDeploymentFailure(
    {
      deploymentId: input.deploymentId,
      requestId: context.awsRequestId,
      deadline: clock.now() + context.getRemainingTimeInMillis() - config.TIME_RESERVE_SECONDS * 1000,
    },
    { config, lease },
  );
}

export const handler = middy(deploymentFailure)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(captureLambdaHandler(tracer))
  .use(logMetrics(metrics));
