import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

/**
 * moto (https://github.com/getmoto/moto), a DynamoDB implementation we did not write, run as
 * `moto_server` in a child process: the service's conditional writes are judged by its condition
 * evaluator as well as by ours (sandbox/world/condition-expression.ts). CI installs it (.ci/run); a
 * machine without it fails these tests, naming the tool, unless AGENTFIX_SKIP_MOTO=1 says to skip.
 */
export const MOTO_TOOL = "moto_server";
export const SKIP_MOTO_ENV = "AGENTFIX_SKIP_MOTO";

/** How long moto may take to answer after it starts (about a second on a quiet machine). */
const READY_WITHIN_MS = 20_000;
/** How long moto may take to exit after SIGTERM before it is killed. */
const STOP_WITHIN_MS = 3_000;

export interface MotoServer {
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** The path of `moto_server` on PATH, if any. */
export function findMotoServer(): string | undefined {
  for (const directory of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(directory, MOTO_TOOL);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Whether the moto tests run here: `skip` carries the reason when AGENTFIX_SKIP_MOTO=1 and moto is
 * missing. Without that variable a missing moto is not a reason to skip: `startMoto` fails the test.
 */
export function motoAvailability(): { skip: false } | { skip: true; reason: string } {
  if (findMotoServer() || process.env[SKIP_MOTO_ENV] !== "1") return { skip: false };
  return { skip: true, reason: `${MOTO_TOOL} is not on PATH and ${SKIP_MOTO_ENV}=1` };
}

export class MotoUnavailableError extends Error {
  override name = "MotoUnavailableError";
}

/** Starts `moto_server` on a free port of 127.0.0.1 and resolves once it answers HTTP. */
export async function startMoto(): Promise<MotoServer> {
  const tool = findMotoServer();
  if (!tool)
    throw new MotoUnavailableError(
      `${MOTO_TOOL} is not on PATH: install it with pip install 'moto[server]' (CI does, in .ci/run), or set ${SKIP_MOTO_ENV}=1 to skip the tests that need it`,
    );
  // A port just freed can be taken again before moto binds it: one more try on another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(tool, await freePort());
    } catch (error) {
      if (attempt >= 2) throw error;
    }
  }
}

async function startOn(tool: string, port: number): Promise<MotoServer> {
  const endpoint = `http://127.0.0.1:${port}`;
  // Its own process group, so that stopping it also ends what a pyenv shim may have started under it.
  const child = spawn(tool, ["-H", "127.0.0.1", "-p", String(port)], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.once("error", (error) => resolve(error.message));
  });
  // A test process that dies without its teardown must not leave moto behind.
  const killOnExit = () => killGroup(child, "SIGKILL");
  process.once("exit", killOnExit);
  const server: MotoServer = {
    endpoint,
    pid: child.pid ?? -1,
    async stop() {
      process.removeListener("exit", killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, "SIGTERM");
      const stopped = await Promise.race([exited.then(() => true), delay(STOP_WITHIN_MS).then(() => false)]);
      if (!stopped) {
        killGroup(child, "SIGKILL");
        await Promise.race([exited, delay(STOP_WITHIN_MS)]);
      }
    },
  };
  const deadline = Date.now() + READY_WITHIN_MS;
  let lastError = "";
  for (;;) {
    const gone = await Promise.race([exited, delay(0).then(() => undefined)]);
    if (gone !== undefined) {
      process.removeListener("exit", killOnExit);
      throw new MotoUnavailableError(
        `${MOTO_TOOL} (${tool}) exited (${gone}) before answering on ${endpoint}: ${stderr.trim() || "no output"}`,
      );
    }
    try {
      const answer = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await answer.arrayBuffer();
      if (answer.ok) return server;
      lastError = `HTTP ${answer.status}`;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      await server.stop();
      throw new MotoUnavailableError(
        `${MOTO_TOOL} did not answer on ${endpoint} within ${READY_WITHIN_MS / 1000} s (${lastError}): ${stderr.trim() || "no output"}`,
      );
    }
    await delay(100);
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
