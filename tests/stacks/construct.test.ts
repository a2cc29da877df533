import { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AutoScalingGroup } from "aws-cdk-lib/aws-autoscaling";
import { ServerApplication, ServerDeploymentGroup } from "aws-cdk-lib/aws-codedeploy";
import { InstanceType, MachineImage, Vpc } from "aws-cdk-lib/aws-ec2";
import { Code } from "aws-cdk-lib/aws-lambda";
import { Topic } from "aws-cdk-lib/aws-sns";
import { describe, expect, it } from "vitest";
import { AgentFix } from "../../lib/agentfix.js";
import type { AgentFixProps } from "../../lib/props.js";
import { parseStageConfig, StageConfigError } from "../../stacks/config.js";

/** The AgentFix construct in a plain CDK app (its code a placeholder: the package test uses the bundles). */
function synth(props: AgentFixProps, build?: (stack: Stack) => Partial<AgentFixProps>) {
  const app = new App();
  const stack = new Stack(app, "Agentfix", { env: { region: "eu-west-1", account: "123456789012" } });
  const agentfix = new AgentFix(
    stack,
    "AgentFix",
    { ...props, ...build?.(stack) },
    { code: () => Code.fromInline("// the pre-built bundle") },
  );
  return { agentfix, template: Template.fromStack(stack) };
}

function environment(template: Template, name: string): Record<string, unknown> {
  const found = Object.values(template.findResources("AWS::Lambda::Function")).find(
    (fn) => fn.Properties.FunctionName === name,
  );
  return found?.Properties.Environment.Variables;
}

describe("the AgentFix construct", () => {
  it("refuses bad props with the configuration file's errors, naming every bad field", () => {
    const bad: [AgentFixProps, Record<string, unknown>][] = [
      [
        { stage: "prod", groups: ["web-prod"], deploymentGroupNames: ["web"], agent: { version: "1.8" } },
        { groups: ["web-prod"], deploymentGroups: ["web"], agent: { version: "1.8" } },
      ],
      [
        { stage: "prd", groups: ["web-prod", "*"], launch: { batchSize: 500 } },
        { groups: ["web-prod", "*"], launch: { batchSize: 500 } },
      ],
      [
        { groups: ["web-prod"], alarmEmail: "not an address" },
        { groups: ["web-prod"], alarms: { email: "not an address" } },
      ],
    ];
    for (const [props, file] of bad) {
      let thrown: unknown;
      try {
        synth(props);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(StageConfigError);
      expect(() => parseStageConfig(props.stage ?? "default", file, "AgentFix props")).toThrow(
        (thrown as Error).message,
      );
      expect((thrown as Error).message).toMatch(
        /^Invalid agentfix configuration for stage "[a-z]+" \(AgentFix props\):\n {2}- /,
      );
    }
  });

  it("takes the user's own groups, deployment groups and topic", () => {
    const { agentfix, template } = synth({ stage: "dev" }, (stack) => {
      const vpc = new Vpc(stack, "Vpc", { maxAzs: 1, natGateways: 0 });
      const web = new AutoScalingGroup(stack, "Web", {
        vpc,
        instanceType: new InstanceType("t3.micro"),
        machineImage: MachineImage.latestAmazonLinux2023(),
      });
      const api = AutoScalingGroup.fromAutoScalingGroupName(stack, "Api", "api-dev");
      const application = ServerApplication.fromServerApplicationName(stack, "App", "web");
      const deploymentGroup = ServerDeploymentGroup.fromServerDeploymentGroupAttributes(stack, "Dg", {
        application,
        deploymentGroupName: "web-dev",
      });
      return {
        autoScalingGroups: [web, api],
        deploymentGroups: [deploymentGroup],
        alarmTopic: new Topic(stack, "Alarms"),
      };
    });
    const hooks = Object.values(template.findResources("AWS::AutoScaling::LifecycleHook")).map(
      (hook) => hook.Properties.AutoScalingGroupName,
    );
    // The group of this app by reference, the imported one by name.
    expect(hooks).toEqual([{ Ref: expect.stringMatching(/^WebASG/) }, "api-dev"]);
    expect(environment(template, "agentfix-dev-launch")?.TARGET_GROUPS).toEqual({
      "Fn::Join": ["", [{ Ref: expect.stringMatching(/^WebASG/) }, ",api-dev"]],
    });
    expect(environment(template, "agentfix-dev-deployment-failure")?.TARGET_DEPLOYMENT_GROUPS).toBe(
      "web/web-dev",
    );
    expect(agentfix.alarms.length).toBeGreaterThan(0);
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      AlarmActions: [{ Ref: Match.stringLikeRegexp("^Alarms") }],
    });
  });

  it("exposes what a user wires further: functions, queues, rules, alarms, hooks and the hook name", () => {
    const { agentfix } = synth({
      groups: ["web-prod", "api-prod"],
      deploymentGroupNames: ["web/web-prod"],
      alarmEmail: "ops@example.com",
    });
    expect(agentfix.launchFunction?.node.id).toBe("LaunchFunction");
    expect(agentfix.failureFunction?.node.id).toBe("DeploymentFailureFunction");
    expect(agentfix.sweepFunction?.node.id).toBe("SweepFunction");
    expect(agentfix.launchQueue && agentfix.launchDeadLetterQueue).toBeTruthy();
    expect(agentfix.failureRetryQueue && agentfix.failureDeadLetterQueue).toBeTruthy();
    expect(agentfix.rules).toHaveLength(4);
    expect(agentfix.lifecycleHooks.map((hook) => hook.autoScalingGroupName)).toEqual([
      "web-prod",
      "api-prod",
    ]);
    expect(agentfix.lifecycleHookName).toBe("agentfix-default-codedeploy-agent-hook");
    expect(agentfix.alarms.map((alarm) => alarm.node.id)).toContain("LaunchAbandonedAlarm");
    expect(agentfix.association).toBeDefined();
  });
});
