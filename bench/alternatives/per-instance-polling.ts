import { CompleteLifecycleActionCommand } from "@aws-sdk/client-auto-scaling";
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
} from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { autoScaling, ssm } from "../../functions/core/common/clients.js";
import { clock } from "../../functions/core/common/clock.js";
import { awsErrorName, isTransient } from "../../functions/core/common/errors.js";

/**
 * The baseline the benchmark compares against: the pattern of AWS's lifecycle-hook samples
 * (aws-samples/amazon-ec2-auto-scaling-group-examples, lambda-managed hooks), one asynchronous
 * invocation per launch event that works on its own instance only: poll DescribeInstanceInformation
 * until the instance is Online (the fix of aws-samples/sample-one-click-generative-ai-solutions#93),
 * send AWS-ConfigureAWSPackage, poll GetCommandInvocation until the command ends, complete the action.
 * It has the same SDK retry settings and poll interval as the service; it is not part of the product.
 */
const POLL_INTERVAL_MS = Number(process.env.POLL_INTERVAL_MS ?? "5000");
const PACKAGE = process.env.AGENT_PACKAGE ?? "AWSCodeDeployAgent";

interface LaunchDetail {
  EC2InstanceId: string;
  AutoScalingGroupName: string;
  LifecycleHookName: string;
  LifecycleActionToken: string;
}

export async function handler(
  event: { detail: LaunchDetail },
  context: Context,
): Promise<{ result: string }> {
  const {
    EC2InstanceId: instanceId,
    AutoScalingGroupName,
    LifecycleHookName,
    LifecycleActionToken,
  } = event.detail;
  const deadline = clock.now() + context.getRemainingTimeInMillis() - 5_000;
  const complete = async (result: "CONTINUE" | "ABANDON") => {
    try {
      await autoScaling.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName,
          LifecycleHookName,
          LifecycleActionToken,
          LifecycleActionResult: result,
        }),
      );
    } catch (error) {
      if (awsErrorName(error) !== "ValidationError") throw error;
    }
    return { result };
  };

  while (true) {
    if (clock.now() > deadline) throw new Error(`timed out waiting for ${instanceId} to register`);
    const info = await ssm
      .send(
        new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: [instanceId] }] }),
      )
      .catch((error) => {
        if (isTransient(error)) return undefined;
        throw error;
      });
    if (info?.InstanceInformationList?.some((item) => item.PingStatus === "Online")) break;
    await clock.sleep(POLL_INTERVAL_MS);
  }

  const sent = await ssm.send(
    new SendCommandCommand({
      DocumentName: "AWS-ConfigureAWSPackage",
      InstanceIds: [instanceId],
      Parameters: { action: ["Install"], name: [PACKAGE], version: [""] },
    }),
  );
  const commandId = sent.Command?.CommandId ?? "";
  while (true) {
    if (clock.now() > deadline) throw new Error(`timed out waiting for command ${commandId}`);
    await clock.sleep(POLL_INTERVAL_MS);
    try {
      const invocation = await ssm.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId }),
      );
      if (invocation.Status === "Success") return complete("CONTINUE");
      if (["Failed", "Cancelled", "TimedOut"].includes(invocation.Status ?? "")) return complete("ABANDON");
    } catch (error) {
      if (awsErrorName(error) !== "InvocationDoesNotExist" && !isTransient(error)) throw error;
    }
  }
}
