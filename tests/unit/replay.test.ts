import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { runReplay } from "../../scripts/replay.js";

const lambda = mockClient(LambdaClient);
const client = new LambdaClient({ region: "us-east-1" });
afterEach(() => lambda.reset());

async function replay(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runReplay(
    argv,
    { out: (text) => out.push(text), err: (text) => err.push(text) },
    client,
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

function eventFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "replay-")), "event.json");
  writeFileSync(path, content);
  return path;
}

/** A Lambda response payload as the SDK returns it. */
function encode(value: unknown) {
  const json = JSON.stringify(value);
  return Object.assign(new TextEncoder().encode(json), { transformToString: () => json });
}

describe("npm run replay (deployed function)", () => {
  it("invokes the stage's launch function with a replay payload and prints the report as a table", async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({
        instances: [
          {
            instanceId: "i-0123456789abcdef0",
            autoScalingGroupName: "web-asg",
            outcome: "CONTINUE",
            reason: "agent 1.8.1 running",
            agentVersion: "1.8.1",
            elapsedSeconds: 74.2,
            installCommandIds: ["c-1"],
            verifyCommandIds: ["c-2"],
          },
        ],
      }),
    });
    const result = await replay(
      "launch",
      "--instance",
      "i-0123456789abcdef0",
      "--group",
      "web-asg",
      "--stage",
      "prod",
    );
    expect(result.code).toBe(0);
    const input = lambda.commandCalls(InvokeCommand)[0]?.args[0].input;
    expect(input?.FunctionName).toBe("agentfix-prod-launch");
    expect(input?.InvocationType).toBe("RequestResponse");
    expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
      instanceIds: ["i-0123456789abcdef0"],
      autoScalingGroupName: "web-asg",
    });
    expect(result.out).toMatch(/instance\s+group\s+outcome/);
    expect(result.out).toMatch(
      /i-0123456789abcdef0\s+web-asg\s+CONTINUE\s+1\.8\.1\s+74\.2 s\s+c-1\s+c-2\s+agent 1\.8\.1 running/,
    );
  });

  it("prints the report as JSON with --json", async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({ deploymentId: "d-ABC", decision: "SKIPPED", reason: "x" }),
    });
    const result = await replay("deployment", "--deployment", "d-ABC", "--json");
    expect(JSON.parse(result.out)).toEqual({ deploymentId: "d-ABC", decision: "SKIPPED", reason: "x" });
    expect(lambda.commandCalls(InvokeCommand)[0]?.args[0].input.FunctionName).toBe(
      "agentfix-dev-deployment-failure",
    );
  });

  it("names the bad field of a malformed event file and invokes nothing", async () => {
    const path = eventFile(
      JSON.stringify({
        source: "aws.autoscaling",
        "detail-type": "EC2 Instance-launch Lifecycle Action",
        detail: { EC2InstanceId: "i-1;rm -rf /" },
      }),
    );
    const result = await replay("launch", "--event", path);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/detail\.EC2InstanceId/);
    expect(result.err).toMatch(/detail\.LifecycleActionToken/);
    expect(lambda.calls()).toHaveLength(0);
  });

  it("says when the event file is not JSON", async () => {
    const result = await replay("deployment", "--event", eventFile("{not json"));
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/is not valid JSON/);
  });

  it("says how to deploy when the function does not exist", async () => {
    lambda
      .on(InvokeCommand)
      .rejects(Object.assign(new Error("Function not found"), { name: "ResourceNotFoundException" }));
    const result = await replay(
      "deployment",
      "--deployment",
      "d-ABC",
      "--stage",
      "uat",
      "--region",
      "eu-west-1",
    );
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/No function named agentfix-uat-deployment-failure in eu-west-1/);
    expect(result.err).toMatch(/npx sst deploy --stage uat/);
  });

  it("says how to provide credentials when there are none", async () => {
    lambda.on(InvokeCommand).rejects(
      Object.assign(new Error("Could not load credentials from any providers"), {
        name: "CredentialsProviderError",
      }),
    );
    const result = await replay("deployment", "--deployment", "d-ABC");
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/No AWS credentials found/);
    expect(result.err).toMatch(/--profile|aws sso login/);
  });

  it("reports a function error with its message and request id", async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: "Unhandled",
      Payload: encode({
        errorType: "DeploymentLimitExceededError",
        errorMessage: "another deployment is running",
      }),
      $metadata: { requestId: "req-42" },
    });
    const result = await replay("deployment", "--deployment", "d-ABC");
    expect(result.code).toBe(2);
    expect(result.err).toMatch(
      /failed \(request id req-42\): DeploymentLimitExceededError: another deployment is running/,
    );
    expect(result.err).toMatch(/\/aws\/lambda\/agentfix-dev-deployment-failure/);
  });

  it("asks for the missing flags", async () => {
    const result = await replay("launch", "--instance", "i-0123456789abcdef0");
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/--group NAME/);
  });
});
