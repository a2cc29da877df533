// Failure path entry point: a CodeDeploy deployment failed (EventBridge, asynchronous invocation), an
// operator replays one (`{"deploymentId":"d-..."}`), or a failure deferred earlier comes back from the
// retry queue (an SQS batch of `{"deploymentId":"d-...","firstSeenAt":"..."}` records). Errors are
// rethrown so Lambda's asynchronous retries and the failure destination apply; a retry record that
// fails comes back alone, as a partial batch failure.
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { clock } from "./core/common/clock.js";
import { dynamoLease } from "./core/common/lease.js";
import { logger, observability } from "./core/common/powertools.js";
import { loadFailureConfig } from "./core/config.js";
import { type RetryBatchReport, repairRetryBatch } from "./core/failure/retry-queue.js";
import { type FailureReport, repairFailedDeployment } from "./core/failure/run.js";
import { type DeploymentFailureInput, parseDeploymentFailureInput } from "./schemas/deployment-failure.js";
import { isObject } from "./schemas/parse.js";

export type FailureBatchReport = RetryBatchReport<FailureReport>;

const config = loadFailureConfig();
const lease = dynamoLease(config.LEASE_TABLE);

export async function handleDeploymentFailure(
  event: unknown,
  context: Context,
): Promise<FailureReport | FailureBatchReport> {
  const deadline = clock.now() + context.getRemainingTimeInMillis() - config.TIME_RESERVE_SECONDS * 1000;
  const repair = (input: DeploymentFailureInput, holder: string) => {
    logger.appendKeys({ deploymentId: input.deploymentId, trigger: input.source });
    return repairFailedDeployment(
      {
        deploymentId: input.deploymentId,
        requestId: holder,
        deadline,
        ...(input.firstSeenAt !== undefined ? { firstSeenAt: input.firstSeenAt } : {}),
      },
      { config, lease },
    );
  };
  if (isObject(event) && "Records" in event) {
    // The message id holds the lease: a redelivery of the same record may take it over.
    return repairRetryBatch(event, (input, messageId) => repair(input, messageId));
  }
  return repair(parseDeploymentFailureInput(event), context.awsRequestId);
}

export const handler = middy(handleDeploymentFailure).use(observability());
