import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseDynamoDbEndpoint } from "./runtime/dynamodb-target.js";
import { DEFAULT_CLOCK_SCALE, DYNAMODB_ENDPOINT_ENV } from "./sandbox.js";
import { SCENARIOS } from "./scenarios/index.js";
import { runScenario } from "./scenarios/run.js";
import { formatSummary } from "./scenarios/table.js";

/**
 * `npm start`: runs a scenario on the sandbox with the real handlers and prints one line per state
 * change, then a summary. `--json` ends stdout with one JSON object; `--serve` keeps the sandbox
 * answering on its endpoint after the story; `--report` writes an HTML timeline.
 */
const USAGE = `Usage: npm start -- [options]

  --scenario <name>   ${Object.keys(SCENARIOS).join(" | ")} (default morning)
  --instances <n>     instances per scaled group (default: the scenario's)
  --seed <s>          random seed; a seed reproduces a run (default 1)
  --json              progress on stderr; stdout ends with one JSON object of the figures
  --report <file>     write a self-contained HTML timeline of every instance and deployment
  --serve             keep the sandbox running after the story and print its endpoint
  --port <p>          port of the sandbox endpoint (default: a free port)
  --scale <r>         real ms per AWS ms (default ${DEFAULT_CLOCK_SCALE}: one AWS second in ${DEFAULT_CLOCK_SCALE * 1000} ms)
  --agent-wait <s>    CodeDeploy's wait for an absent agent: 300 (limits page, default) or 3600
  --dynamodb-endpoint <url>
                      the handlers' DynamoDB elsewhere (e.g. moto_server's http://127.0.0.1:5000;
                      default $AGENTFIX_SANDBOX_DYNAMODB_ENDPOINT, else the sandbox's own); its calls
                      are not counted
  --verbose           show the handlers' own logs
`;

export class UsageError extends Error {
  override name = "UsageError";
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new UsageError(`--${name} needs a positive number, got "${value}"`);
  return parsed;
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      scenario: { type: "string", default: "morning" },
      instances: { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      report: { type: "string" },
      serve: { type: "boolean", default: false },
      port: { type: "string" },
      scale: { type: "string" },
      "agent-wait": { type: "string" },
      "dynamodb-endpoint": { type: "string" },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const scenario = SCENARIOS[values.scenario];
  if (!scenario)
    throw new UsageError(
      `unknown scenario "${values.scenario}"; choose one of ${Object.keys(SCENARIOS).join(", ")}`,
    );
  const out = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
  if (!values.verbose) {
    // The handlers' console output (Powertools warnings among it) is for --verbose; this CLI writes
    // to process.stdout / process.stderr directly.
    for (const method of ["log", "info", "warn", "debug"] as const) console[method] = () => {};
  }
  const seed = values.seed === undefined ? 1 : /^\d+$/.test(values.seed) ? Number(values.seed) : values.seed;
  const given = values["dynamodb-endpoint"];
  if (given !== undefined) {
    try {
      parseDynamoDbEndpoint(given, "--dynamodb-endpoint");
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  }
  out(`agentfix sandbox: ${scenario.name}: ${scenario.title}`);
  const dynamodbEndpoint = given || process.env[DYNAMODB_ENDPOINT_ENV];
  if (dynamodbEndpoint)
    out(
      `DynamoDB at ${dynamodbEndpoint} (tables prefixed with the run's id; its calls are not counted here)`,
    );
  const result = await runScenario(scenario, {
    instances: number(values.instances, "instances"),
    seed,
    clockScale: number(values.scale, "scale"),
    agentWaitSeconds: number(values["agent-wait"], "agent-wait"),
    port: number(values.port, "port"),
    dynamodbEndpoint: values["dynamodb-endpoint"],
    verbose: values.verbose,
    keepOpen: values.serve,
    onProgress: out,
  });
  out("");
  out(formatSummary(result, serviceGroupsOf(result)));
  if (values.report) {
    const { renderReport } = await import("./scenarios/report.js");
    writeFileSync(values.report, renderReport(result));
    out(`timeline written to ${values.report}`);
  }
  if (values.json) await writeOut(`${JSON.stringify(result.summary)}\n`);
  if (values.serve) {
    const { sandbox } = result;
    out(`serving the sandbox at ${sandbox.endpoint} (Ctrl-C to stop)`);
    out(
      `  export AWS_ENDPOINT_URL=${sandbox.endpoint} AWS_REGION=${sandbox.world.region} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox`,
    );
    out(`  aws ssm describe-instance-information --endpoint-url ${sandbox.endpoint}`);
    process.stdout.write(`${JSON.stringify({ serving: sandbox.endpoint, region: sandbox.world.region })}\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await sandbox.close();
  }
  // The SDK clients keep connections alive; closing the server lets the process end at once.
  await result.sandbox.server.close();
  return result.summary.ok ? 0 : 1;
}

function writeOut(text: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(text, () => resolve()));
}

/** The stage whose launch function has each group in scope. */
function serviceGroupsOf(result: Awaited<ReturnType<typeof runScenario>>): Record<string, string> {
  const stages: Record<string, string> = {};
  for (const fn of result.sandbox.runtime.functions.values()) {
    if (!fn.spec.name.endsWith("-launch")) continue;
    for (const group of (fn.spec.env?.TARGET_GROUPS ?? "").split(",").filter(Boolean))
      stages[group] = fn.spec.env?.STAGE ?? "yes";
  }
  return stages;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    async (code) => {
      // Work a handler left running (a retry timer, a poll) must not keep a finished run alive; exit
      // once stdout has taken everything (a pipe takes large writes in several turns).
      await writeOut("");
      process.exit(code);
    },
    (error: unknown) => {
      process.stderr.write(
        `${error instanceof UsageError ? `${error.message}\n\n${USAGE}` : `sandbox failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`}\n`,
      );
      process.exitCode = 2;
    },
  );
}
