import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  AutoScalingClient,
  type AutoScalingGroup,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeWarmPoolCommand,
  type Instance,
  type LifecycleState,
} from "@aws-sdk/client-auto-scaling";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { drainLifecycleHook, handler, sdkDrainApi } from "../../functions/drain-hook.js";

const autoScaling = mockClient(AutoScalingClient);
const TARGET = { groupName: "web", hookName: "agentfix-prod-codedeploy-agent-hook" };
const drain = () => drainLifecycleHook(sdkDrainApi(new AutoScalingClient({})), TARGET);
const instance = (InstanceId: string, LifecycleState: LifecycleState): Instance => ({
  InstanceId,
  LifecycleState,
  AvailabilityZone: "us-east-1a",
  HealthStatus: "Healthy",
  ProtectedFromScaleIn: false,
});
const group = (extra: Partial<AutoScalingGroup>): AutoScalingGroup => ({
  AutoScalingGroupName: "web",
  MinSize: 0,
  MaxSize: 4,
  DesiredCapacity: 1,
  DefaultCooldown: 300,
  AvailabilityZones: ["us-east-1a"],
  HealthCheckType: "EC2",
  CreatedTime: new Date(0),
  ...extra,
});
const completed = () =>
  autoScaling.commandCalls(CompleteLifecycleActionCommand).map((call) => call.args[0].input);

beforeEach(() => {
  autoScaling.reset();
  autoScaling.on(CompleteLifecycleActionCommand).resolves({});
});

describe("the hook drain", () => {
  it("continues the launches waiting in the group and in its warm pool, reading every page of the pool", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        group({
          Instances: [instance("i-0group", "Pending:Wait"), instance("i-0serving", "InService")],
          WarmPoolConfiguration: { MinSize: 2, PoolState: "Stopped" },
        }),
      ],
    });
    autoScaling
      .on(DescribeWarmPoolCommand, { AutoScalingGroupName: "web", NextToken: undefined })
      .resolves({
        Instances: [instance("i-0warm1", "Warmed:Pending:Wait"), instance("i-0stopped", "Warmed:Stopped")],
        NextToken: "page-2",
      })
      .on(DescribeWarmPoolCommand, { AutoScalingGroupName: "web", NextToken: "page-2" })
      .resolves({ Instances: [instance("i-0warm2", "Warmed:Pending:Wait")] });

    const report = await drain();

    expect(report).toMatchObject({
      continued: ["i-0group", "i-0warm1", "i-0warm2"],
      notOurs: [],
      failed: [],
    });
    expect(autoScaling.commandCalls(DescribeWarmPoolCommand)).toHaveLength(2);
    expect(completed()).toEqual(
      ["i-0group", "i-0warm1", "i-0warm2"].map((InstanceId) => ({
        AutoScalingGroupName: "web",
        LifecycleHookName: TARGET.hookName,
        InstanceId,
        LifecycleActionResult: "CONTINUE",
      })),
    );
  });

  it("reads no warm pool for a group without one", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [group({ Instances: [instance("i-0group", "Pending:Wait")] })],
    });

    const report = await drain();

    expect(report.continued).toEqual(["i-0group"]);
    expect(autoScaling.commandCalls(DescribeWarmPoolCommand)).toHaveLength(0);
  });
});

describe("the answer to CloudFormation", () => {
  /** A pre-signed URL stand-in that answers every PUT with `status` and keeps what it was sent. */
  async function responseUrl(status: number) {
    const received: string[] = [];
    const server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        received.push(body);
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/answer`, received, close: () => server.close() };
  }
  const request = (url: string) => ({
    RequestType: "Create",
    ResponseURL: url,
    StackId: "stack",
    RequestId: "request",
    LogicalResourceId: "LaunchHookwebDrain",
    ResourceProperties: TARGET,
  });

  it("answers SUCCESS, and fails the invocation when CloudFormation refuses the answer, so Lambda answers again", async () => {
    const accepted = await responseUrl(200);
    await handler(request(accepted.url));
    expect(JSON.parse(accepted.received[0] ?? "{}")).toMatchObject({ Status: "SUCCESS" });
    accepted.close();
    const refused = await responseUrl(403);
    await expect(handler(request(refused.url))).rejects.toThrow(/HTTP 403/);
    refused.close();
  });
});
