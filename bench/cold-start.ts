import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";

/**
 * Cold start of each function: the size of its bundle, built with esbuild the way SST v2 builds it
 * (ESM, platform node, everything bundled, keepNames) and minified as the stacks configure it, and
 * its module initialisation time: the median of repeated imports of the bundle in fresh `node`
 * processes, as a ratio to a bare handler that only imports @aws-sdk/client-ssm. The runs of the
 * bundles are interleaved so that machine noise hits them alike.
 */
export const FUNCTIONS = ["launch", "deployment-failure", "sweep"] as const;

const BARE_HANDLER = `import { SSMClient } from "@aws-sdk/client-ssm";
const client = new SSMClient({});
export const handler = async () => client.config.serviceId;
`;

// SST v2's banner for ESM functions (node_modules/sst/runtime/handlers/node.js): ESM bundles of
// CommonJS dependencies need require() and __dirname.
const BANNER = [
  "import { createRequire as topLevelCreateRequire } from 'module';",
  "const require = topLevelCreateRequire(import.meta.url);",
  'import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"',
  'const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))',
].join("\n");

/** The launch function's row with tracing switched off (stage setting `tracing: false`). */
const UNTRACED = "launch (tracing off)";

export interface ColdStartRow {
  function: string;
  bundleBytes: number;
  initMs: number;
  initRatio: number;
}

async function bundle(entry: { file: string } | { source: string }, outfile: string): Promise<number> {
  await build({
    ...("file" in entry
      ? { entryPoints: [entry.file] }
      : { stdin: { contents: entry.source, loader: "ts", resolveDir: process.cwd() } }),
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "esnext",
    // As SST v2 does for ESM functions: the ES module builds of the AWS SDK tree-shake.
    mainFields: ["module", "main"],
    keepNames: true,
    minify: true,
    banner: { js: BANNER },
    logLevel: "error",
  });
  return statSync(outfile).size;
}

function importOnce(file: string, extraEnv: Record<string, string> = {}): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(file)}); process.stdout.write(String(performance.now() - t));`;
  const output = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    env: {
      PATH: process.env.PATH,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "bench",
      AWS_SECRET_ACCESS_KEY: "bench",
      POWERTOOLS_LOG_LEVEL: "SILENT",
      LIFECYCLE_HOOK_NAME: "agentfix-launch",
      LAUNCH_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/agentfix-launch",
      LEASE_TABLE: "agentfix-leases",
      STAGE: "bench",
      ...extraEnv,
    },
    encoding: "utf8",
  });
  return Number(output);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

export async function measureColdStart(
  runs = 15,
): Promise<{ bare: ColdStartRow; functions: ColdStartRow[] }> {
  const dir = mkdtempSync(join(tmpdir(), "agentfix-cold-start-"));
  const files = new Map<string, { file: string; bytes: number }>();
  const bareFile = join(dir, "bare.mjs");
  files.set("bare", { file: bareFile, bytes: await bundle({ source: BARE_HANDLER }, bareFile) });
  for (const name of FUNCTIONS) {
    const file = join(dir, `${name}.mjs`);
    files.set(name, { file, bytes: await bundle({ file: resolve(`functions/${name}.ts`) }, file) });
  }
  const samples = new Map<string, number[]>([...files.keys(), UNTRACED].map((name) => [name, []]));
  for (let run = 0; run < runs; run += 1) {
    for (const [name, { file }] of files) samples.get(name)?.push(importOnce(file));
    // The launch function again with tracing off: the tracer and its X-Ray SDK are not loaded.
    samples
      .get(UNTRACED)
      ?.push(importOnce(files.get("launch")?.file ?? "", { POWERTOOLS_TRACE_ENABLED: "false" }));
  }
  const bareMs = median(samples.get("bare") ?? []);
  const row = (name: string): ColdStartRow => {
    const initMs = median(samples.get(name) ?? []);
    return {
      function: name,
      bundleBytes: files.get(name === UNTRACED ? "launch" : name)?.bytes ?? 0,
      initMs: Math.round(initMs * 10) / 10,
      initRatio: Math.round((initMs / bareMs) * 100) / 100,
    };
  };
  return { bare: row("bare"), functions: [...FUNCTIONS, UNTRACED].map(row) };
}
