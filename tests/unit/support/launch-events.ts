// Launch events and SQS records built from the real event shapes under tests/events/.
import { readFileSync } from "node:fs";
import { clock } from "../../../functions/core/common/clock.js";

export function fixture(name: string) {
  return JSON.parse(readFileSync(`tests/events/${name}`, "utf8"));
}

/** The AWS docs sample launch event, sent now, about this instance of web-asg on the agentfix-launch hook. */
export function launchEvent(
  instanceId: string,
  overrides: Record<string, unknown> = {},
  file = "ec2-instance-launch-lifecycle-action.json",
) {
  const event = fixture(file);
  event.time = new Date(clock.now()).toISOString();
  event.detail = {
    ...event.detail,
    AutoScalingGroupName: "web-asg",
    LifecycleHookName: "agentfix-launch",
    EC2InstanceId: instanceId,
    LifecycleActionToken: `token-${instanceId}`,
    ...overrides,
  };
  return event;
}

/** An SQS record of the launch queue carrying `body` as JSON. */
export function sqsRecord(messageId: string, body: unknown, receiptHandle = `receipt-${messageId}`) {
  return { messageId, receiptHandle, body: JSON.stringify(body), eventSource: "aws:sqs" };
}
