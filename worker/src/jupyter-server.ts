import type { ChildProcess } from "node:child_process";
import type { Logger } from "pino";
import { ErrorCodes } from "@tether/shared";
import { WorkerError } from "./errors.js";
import { freePort, spawnJupyter, type SpawnedJupyter } from "./jupyter-launch.js";

export { JUPYTER_BOOTSTRAP, JUPYTER_INSTANCE_VARIABLE, jupyterServerArgs, kernelEnvironment } from "./jupyter-launch.js";

export interface JupyterServerOptions {
  python: string;
  /** Absolute, realpath'd workspace: Jupyter's root dir, so kernels start there. */
  workspace: string;
  /** Environment for the server and, through it, the kernel: must not hold the join token. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Give up when /api/status does not answer within this long (default 60 s). */
  readyTimeoutMs?: number;
}

export interface JupyterServer {
  baseUrl: string;
  wsUrl: string;
  token: string;
  pid: number | undefined;
  /** Settles when the process ends, however (stop() or a crash): what `unexpected` says. */
  readonly exited: Promise<JupyterServerExit>;
  /** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface JupyterServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** False when stop() ended it. */
  unexpected: boolean;
  /** A marker every process of that server carries in its environment (its kernels too), to find what it left behind. */
  instance: string;
}

const READY_POLL_MS = 20;
const STOP_GRACE_MS = 3000;
const BIND_ATTEMPTS = 3;

/**
 * Starts Jupyter Server on a free loopback port and resolves once /api/status
 * answers. `first`: a process main.ts already spawned (jupyter-launch.ts),
 * used as the first attempt.
 */
export async function startJupyterServer(options: JupyterServerOptions, first?: SpawnedJupyter): Promise<JupyterServer> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
    try {
      const spawned = attempt === 1 && first ? first : spawnJupyter(options, await freePort());
      return await waitUntilAnswering(options, spawned);
    } catch (error) {
      lastError = error;
      // Another process may take the port between our probe and the server's bind: try a new one.
      if (!(error instanceof PortInUseError)) throw error;
      options.logger.warn({ attempt }, "jupyter server port was taken, retrying with another");
    }
  }
  throw new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, "Jupyter Server could not bind a port.", { cause: lastError });
}

class PortInUseError extends Error {}

async function waitUntilAnswering(options: JupyterServerOptions, spawned: SpawnedJupyter): Promise<JupyterServer> {
  const { child, port, token, instance } = spawned;
  const log = options.logger.child({ component: "jupyter-server" });
  spawned.onLine = (line) => log.debug({ line }, "jupyter server stderr");
  let stopping = false;
  const exitPromise = spawned.ended.then(() => {
    if (spawned.spawnError) log.error({ err: spawned.spawnError }, "jupyter server failed to spawn");
    else log.debug({ ...spawned.exit }, "jupyter server exited");
  });

  const baseUrl = `http://127.0.0.1:${port}/`;
  const server: JupyterServer = {
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/`,
    token,
    pid: child.pid,
    exited: exitPromise.then(() => ({ code: spawned.exit?.code ?? null, signal: spawned.exit?.signal ?? null, unexpected: !stopping, instance })),
    stop: once(() => {
      stopping = true;
      return stopProcess(child, () => spawned.exit !== undefined, exitPromise);
    }),
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  const statusUrl = `${baseUrl}api/status`;
  for (;;) {
    const exited = spawned.exit;
    if (exited) {
      const stderr = spawned.stderrTail();
      if (/already in use|Address already in use/i.test(stderr)) throw new PortInUseError(stderr);
      throw new WorkerError(
        ErrorCodes.KERNEL_UNAVAILABLE,
        `Jupyter Server exited before it was ready (code ${exited.code}, signal ${exited.signal}). Last stderr lines:\n${stderr}`,
      );
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new WorkerError(ErrorCodes.KERNEL_UNAVAILABLE, `Jupyter Server did not answer within ${options.readyTimeoutMs ?? 60_000} ms. Last stderr lines:\n${spawned.stderrTail()}`);
    }
    if (await answers(statusUrl, token)) return server;
    await delay(READY_POLL_MS);
  }
}

async function answers(url: string, token: string): Promise<boolean> {
  try {
    const response = await fetch(url, { headers: { Authorization: `token ${token}` } });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

async function stopProcess(child: ChildProcess, hasExited: () => boolean, exitPromise: Promise<void>): Promise<void> {
  if (hasExited() || child.pid === undefined) return;
  signalGroup(child.pid, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child.pid ?? 0, "SIGKILL"), STOP_GRACE_MS);
  await exitPromise;
  clearTimeout(timer);
  // Helpers the server forked may outlive it by a moment; the group kill reaches them.
  signalGroup(child.pid, "SIGKILL");
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}
