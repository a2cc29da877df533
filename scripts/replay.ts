import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from "@aws-sdk/client-lambda";
import { errorMessage } from "../functions/core/common/errors.js";
import { parseDeploymentFailureInput } from "../functions/schemas/deployment-failure.js";
import { parseLaunchInput } from "../functions/schemas/launch-input.js";
import { formatReport } from "./format-report.js";

/**
 * `npm run replay -- <launch|deployment> [options]`: replays an event through the deployed function
 * (Lambda Invoke, RequestResponse) or, with --sandbox, through the same handler on a local sandbox
 * fleet, and prints the function's report as a table (or as JSON with --json).
 */
export const USAGE = `Usage:
  npm run replay -- launch     (--event FILE | --instance i-... [--instance i-...] --group NAME [--hook NAME]) [options]
  npm run replay -- deployment (--event FILE | --deployment d-...) [options]

Options:
  --stage NAME      stage whose function to invoke (default: dev)
  --region REGION   AWS Region (default: AWS_REGION, then the profile's region)
  --profile NAME    AWS profile (default: AWS_PROFILE / the default credential chain)
  --function NAME   invoke this function instead of agentfix-<stage>-<launch|deployment-failure>
  --sandbox         run the handler locally against a fresh sandbox fleet (no AWS account needed)
  --json            print the report as JSON
  --help            show this help`;

export type ReplayKind = "launch" | "deployment";

export class ReplayError extends Error {
  override name = "ReplayError";
}

export interface ReplayOptions {
  kind: ReplayKind;
  payload: unknown;
  stage: string;
  region?: string;
  profile?: string;
  functionName: string;
  sandbox: boolean;
  json: boolean;
}

/** Reads the command line into options and a validated payload; throws ReplayError with what to do. */
export function parseReplayArgs(argv: string[]): ReplayOptions | "help" {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    throw new ReplayError(`${errorMessage(error)}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  const kind = positionals[0];
  if (kind !== "launch" && kind !== "deployment") {
    throw new ReplayError(
      `Say what to replay: "launch" or "deployment" (got ${kind ?? "nothing"}).\n\n${USAGE}`,
    );
  }
  const payload = values.event ? readEventFile(values.event) : payloadFromFlags(kind, values);
  // Validate here with the function's own schemas, so a bad file is refused before anything runs.
  try {
    if (kind === "launch") {
      if (!(payload && typeof payload === "object" && "Records" in payload)) parseLaunchInput(payload);
    } else parseDeploymentFailureInput(payload);
  } catch (error) {
    throw new ReplayError(
      `${values.event ?? "The flags"} ${values.event ? "is not a valid " : "do not make a valid "}${kind} input. ${errorMessage(error)}`,
    );
  }
  const stage = values.stage ?? "dev";
  return {
    kind,
    payload,
    stage,
    region: values.region,
    profile: values.profile,
    functionName:
      values.function ?? `agentfix-${stage}-${kind === "launch" ? "launch" : "deployment-failure"}`,
    sandbox: values.sandbox ?? false,
    json: values.json ?? false,
  };
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      event: { type: "string" },
      instance: { type: "string", multiple: true },
      group: { type: "string" },
      hook: { type: "string" },
      deployment: { type: "string" },
      stage: { type: "string" },
      region: { type: "string" },
      profile: { type: "string" },
      function: { type: "string" },
      sandbox: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

function readEventFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ReplayError(`Cannot read the event file ${path}: ${errorMessage(error)}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ReplayError(`${path} is not valid JSON: ${errorMessage(error)}`);
  }
}

function payloadFromFlags(kind: ReplayKind, values: ReturnType<typeof parseCli>["values"]): unknown {
  if (kind === "deployment") {
    if (!values.deployment) throw new ReplayError(`Give --deployment d-... or --event FILE.\n\n${USAGE}`);
    return { deploymentId: values.deployment };
  }
  if (!values.instance?.length || !values.group) {
    throw new ReplayError(`Give --instance i-... and --group NAME, or --event FILE.\n\n${USAGE}`);
  }
  return {
    instanceIds: values.instance,
    autoScalingGroupName: values.group,
    ...(values.hook ? { lifecycleHookName: values.hook } : {}),
  };
}

/** Invokes the deployed function and returns its report; AWS failures become ReplayErrors that say what to do. */
export async function invokeDeployed(options: ReplayOptions, client?: LambdaClient): Promise<unknown> {
  if (options.profile) process.env.AWS_PROFILE = options.profile;
  const lambda = client ?? new LambdaClient(options.region ? { region: options.region } : {});
  let response: InvokeCommandOutput;
  try {
    response = await lambda.send(
      new InvokeCommand({
        FunctionName: options.functionName,
        InvocationType: "RequestResponse",
        Payload: new TextEncoder().encode(JSON.stringify(options.payload)),
      }),
    );
  } catch (error) {
    throw explainInvokeError(error, options);
  }
  const body = response.Payload ? new TextDecoder().decode(response.Payload) : "null";
  const requestId = response.$metadata?.requestId ?? "unknown";
  if (response.FunctionError) {
    let message = body;
    try {
      const parsed = JSON.parse(body) as { errorType?: string; errorMessage?: string };
      message = `${parsed.errorType ?? response.FunctionError}: ${parsed.errorMessage ?? body}`;
    } catch {
      // The body was not JSON: print it as it came.
    }
    throw new ReplayError(
      `The function ${options.functionName} failed (request id ${requestId}): ${message}\nIts logs are in CloudWatch Logs, log group /aws/lambda/${options.functionName}; search for the request id.`,
    );
  }
  return JSON.parse(body);
}

function explainInvokeError(error: unknown, options: ReplayOptions): ReplayError {
  const name = error && typeof error === "object" && "name" in error ? String(error.name) : "";
  const message = errorMessage(error);
  if (name === "ResourceNotFoundException") {
    return new ReplayError(
      `No function named ${options.functionName} in ${options.region ?? "the configured Region"}. Deploy the stage first (npx sst deploy --stage ${options.stage}), or pass --stage, --region or --function. Or replay locally with --sandbox.`,
    );
  }
  if (name === "CredentialsProviderError" || /Could not load credentials|credential/i.test(message)) {
    return new ReplayError(
      `No AWS credentials found (${message}). Set AWS_PROFILE or pass --profile, run "aws configure" or "aws sso login", or replay locally with --sandbox.`,
    );
  }
  if (name === "AccessDeniedException" || name === "AccessDenied") {
    return new ReplayError(
      `Not allowed to invoke ${options.functionName}: ${message}. The caller needs lambda:InvokeFunction on it.`,
    );
  }
  return new ReplayError(`Invoking ${options.functionName} failed: ${name ? `${name}: ` : ""}${message}`);
}

export interface ReplayIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs the replay tool; returns the process exit code. */
export async function runReplay(argv: string[], io: ReplayIo, lambda?: LambdaClient): Promise<number> {
  try {
    const options = parseReplayArgs(argv);
    if (options === "help") {
      io.out(USAGE);
      return 0;
    }
    const report = options.sandbox ? await replayInSandbox(options) : await invokeDeployed(options, lambda);
    io.out(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return 0;
  } catch (error) {
    io.err(error instanceof ReplayError ? error.message : `Replay failed: ${errorMessage(error)}`);
    return error instanceof ReplayError ? 2 : 1;
  }
}

async function replayInSandbox(options: ReplayOptions): Promise<unknown> {
  const { replayOnSandbox } = await import("../sandbox/replay.js");
  return replayOnSandbox(options.kind, options.payload);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runReplay(process.argv.slice(2), { out: console.log, err: console.error }).then((code) => {
    process.exitCode = code;
  });
}
