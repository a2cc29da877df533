// Failure path entry point: a CodeDeploy deployment failed (EventBridge, asynchronous invocation) or
// an operator replays one (`{"deploymentId":"d-..."}`). Errors are rethrown so Lambda's asynchronous
// retries and the failure destination apply.
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { clock } from "./core/common/clock.js";
import { dynamoLease } from "./core/common/lease.js";
import { logger, observability } from "./core/common/powertools.js";
import { loadFailureConfig } from "./core/config.js";
import { type FailureReport, repairFailedDeployment } from "./core/failure/run.js";
import { parseDeploymentFailureInput } from "./schemas/deployment-failure.js";

const config = loadFailureConfig();
const lease = dynamoLease(config.LEASE_TABLE);

export async function handleDeploymentFailure(event: unknown, context: Context): Promise<FailureReport> {
  const input = parseDeploymentFailureInput(event);
  logger.appendKeys({ deploymentId: input.deploymentId, trigger: input.source });
  return repairFailedDeployment(
    {
      deploymentId: input.deploymentId,
      requestId: context.awsRequestId,
      deadline: clock.now() + context.getRemainingTimeInMillis() - config.TIME_RESERVE_SECONDS * 1000,
    },
    { config, lease },
  );
}

export const handler = middy(handleDeploymentFailure).use(observability());
