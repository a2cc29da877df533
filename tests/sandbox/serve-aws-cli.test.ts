import { type ChildProcess, execFile, spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const BATCH = resolve(import.meta.dirname, "fixtures/aws-cli-batch.py");
const hasAwsCli = await run("python3", ["-c", "import awscli.clidriver"]).then(
  () => true,
  () => false,
);

/**
 * `npm start -- --serve` keeps the sandbox up after the story, and a client this project did not
 * write (the AWS CLI the machine ships, botocore's own wire code) talks to it.
 */
describe.skipIf(!hasAwsCli)("the served sandbox, through the AWS CLI", () => {
  let child: ChildProcess;
  let python: ChildProcess;
  let endpoint: string;
  const cliAnswers: ((line: string) => void)[] = [];

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [
        "--import",
        "./sandbox/register.mjs",
        "sandbox/cli.ts",
        "--serve",
        "--json",
        "--instances",
        "1",
        "--seed",
        "9",
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    const lines = createInterface({ input: child.stdout! });
    endpoint = await new Promise<string>((found, fail) => {
      lines.on("line", (line) => {
        if (line.startsWith('{"serving"')) found((JSON.parse(line) as { serving: string }).serving);
      });
      child.once("exit", (code) => fail(new Error(`the sandbox exited early with ${code}`)));
    });
    python = spawn("python3", [BATCH], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: "sandbox", AWS_SECRET_ACCESS_KEY: "sandbox", AWS_PAGER: "" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: python.stdout! }).on("line", (line) => cliAnswers.shift()?.(line));
  }, 60_000);

  afterAll(() => {
    child?.kill("SIGTERM");
    python?.stdin?.end();
  });

  /** Runs AWS CLI command lines (`aws <args>`) against the sandbox; each result is parsed JSON or the error text. */
  const cli = async (
    ...commands: string[][]
  ): Promise<{ json: Record<string, unknown>; error: string }[]> => {
    const line = new Promise<string>((answered) => cliAnswers.push(answered));
    python.stdin!.write(
      `${JSON.stringify(commands.map((args) => ["--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json", ...args]))}\n`,
    );
    const results = JSON.parse(await line) as { rc: number; stdout: string; stderr: string }[];
    return results.map((result) => ({
      json:
        result.rc === 0 && result.stdout.trim() ? (JSON.parse(result.stdout) as Record<string, unknown>) : {},
      error: result.rc === 0 ? "" : result.stderr,
    }));
  };
  const aws = async (...args: string[]) => (await cli(args))[0]!.json;

  it("answers SSM, Auto Scaling and CodeDeploy reads", async () => {
    const [instances, asgInstances, groups, hooks, activities, deployments] = (
      await cli(
        ["ssm", "describe-instance-information"],
        ["autoscaling", "describe-auto-scaling-instances"],
        ["autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "web"],
        ["autoscaling", "describe-lifecycle-hooks", "--auto-scaling-group-name", "web"],
        ["autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "web"],
        ["deploy", "list-deployments", "--application-name", "shop", "--deployment-group-name", "api-dg"],
      )
    ).map((result) => result.json) as [
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    const info = instances.InstanceInformationList as { InstanceId: string; PingStatus: string }[];
    expect(info.length).toBeGreaterThanOrEqual(2);
    expect(info.every((row) => row.PingStatus === "Online")).toBe(true);
    expect(
      (asgInstances.AutoScalingInstances as { LifecycleState: string }[]).some(
        (row) => row.LifecycleState === "InService",
      ),
    ).toBe(true);
    expect((groups.AutoScalingGroups as { DesiredCapacity: number }[])[0]!.DesiredCapacity).toBe(1);
    expect(
      (hooks.LifecycleHooks as { LifecycleHookName: string }[]).map((hook) => hook.LifecycleHookName).sort(),
    ).toEqual([
      "CodeDeploy-managed-automatic-launch-deployment-hook-web-dg",
      "agentfix-sandbox-codedeploy-agent-hook",
    ]);
    expect((activities.Activities as { StatusCode: string }[])[0]!.StatusCode).toBe("Successful");
    const [redeploy, original] = deployments.deployments as string[];
    const [deployment, targets, group] = await Promise.all([
      aws("deploy", "get-deployment", "--deployment-id", original!),
      aws(
        "deploy",
        "list-deployment-targets",
        "--deployment-id",
        original!,
        "--target-filters",
        "TargetStatus=Failed",
      ),
      aws(
        "deploy",
        "get-deployment-group",
        "--application-name",
        "shop",
        "--deployment-group-name",
        "api-dg",
      ),
    ]);
    expect(deployment.deploymentInfo).toMatchObject({
      status: "Failed",
      creator: "user",
      errorInformation: { code: "HEALTH_CONSTRAINTS" },
    });
    const failed = targets.targetIds as string[];
    const described = await aws(
      "deploy",
      "batch-get-deployment-targets",
      "--deployment-id",
      original!,
      "--target-ids",
      ...failed,
    );
    const target = (
      described.deploymentTargets as {
        instanceTarget: {
          lifecycleEvents: { lifecycleEventName: string; diagnostics?: { errorCode: string } }[];
        };
      }[]
    )[0]!;
    expect(
      target.instanceTarget.lifecycleEvents.find((event) => event.lifecycleEventName === "ApplicationStart")
        ?.diagnostics?.errorCode,
    ).toBe("ScriptFailed");
    expect(
      (group.deploymentGroupInfo as { lastSuccessfulDeployment: { deploymentId: string } })
        .lastSuccessfulDeployment.deploymentId,
    ).toBe(redeploy);
  });

  it("runs commands and reports their invocations", async () => {
    const info = (await aws("ssm", "describe-instance-information")).InstanceInformationList as {
      InstanceId: string;
    }[];
    const instanceId = info[0]!.InstanceId;
    const sent = await aws(
      "ssm",
      "send-command",
      "--document-name",
      "AWS-RunShellScript",
      "--instance-ids",
      instanceId,
      "--parameters",
      JSON.stringify({ commands: ["# agentfix verify-agent", "true"] }),
      "--comment",
      "from the AWS CLI",
    );
    const commandId = (sent.Command as { CommandId: string }).CommandId;
    // A second of real time is minutes of sandbox time: the script has long finished.
    await new Promise((done) => setTimeout(done, 1000));
    const [listed, invocation, commands] = (
      await cli(
        ["ssm", "list-command-invocations", "--command-id", commandId, "--details"],
        ["ssm", "get-command-invocation", "--command-id", commandId, "--instance-id", instanceId],
        ["ssm", "list-commands", "--command-id", commandId],
      )
    ).map((result) => result.json) as [
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    const plugin = (
      listed.CommandInvocations as { Status: string; CommandPlugins: { Output: string }[] }[]
    )[0]!;
    expect(plugin.Status).toBe("Success");
    expect(plugin.CommandPlugins[0]!.Output).toMatch(
      /^AGENTFIX_AGENT_STATUS=running AGENTFIX_AGENT_VERSION=\d+\.\d+\.\d+/,
    );
    expect(invocation).toMatchObject({
      Comment: "from the AWS CLI",
      DocumentName: "AWS-RunShellScript",
      Status: "Success",
    });
    expect((commands.Commands as { TargetCount: number }[])[0]!.TargetCount).toBe(1);
  });

  it("sends AWS's error codes and messages", async () => {
    const [complete, heartbeat, tooMany, sqs, lease, queued] = (
      await cli(
        [
          "autoscaling",
          "complete-lifecycle-action",
          "--auto-scaling-group-name",
          "web",
          "--lifecycle-hook-name",
          "agentfix-sandbox-codedeploy-agent-hook",
          "--lifecycle-action-result",
          "CONTINUE",
          "--instance-id",
          "i-00000000000000000",
        ],
        [
          "autoscaling",
          "record-lifecycle-action-heartbeat",
          "--auto-scaling-group-name",
          "web",
          "--lifecycle-hook-name",
          "agentfix-sandbox-codedeploy-agent-hook",
          "--lifecycle-action-token",
          "11111111-2222-3333-4444-555555555555",
        ],
        ["ssm", "describe-instance-information", "--max-results", "51"],
        ["sqs", "send-message", "--queue-url", `${endpoint}/123456789012/missing`, "--message-body", "x"],
        ["dynamodb", "get-item", "--table-name", "missing", "--key", JSON.stringify({ pk: { S: "x" } })],
        [
          "sqs",
          "send-message",
          "--queue-url",
          `${endpoint}/123456789012/agentfix-launch`,
          "--message-body",
          "{}",
        ],
      )
    ).map((result) => result.error || JSON.stringify(result.json));
    expect(complete).toContain("(ValidationError)");
    expect(complete).toContain("No active Lifecycle Action found with instance ID i-00000000000000000");
    expect(heartbeat).toContain(
      "No active Lifecycle Action found with token 11111111-2222-3333-4444-555555555555",
    );
    expect(tooMany).toContain("ValidationException");
    // botocore reads SQS's legacy code from the x-amzn-query-error header, as with the real service.
    expect(sqs).toContain("AWS.SimpleQueueService.NonExistentQueue");
    expect(lease).toContain("ResourceNotFoundException");
    expect(queued).toContain("MessageId");
  });
});
