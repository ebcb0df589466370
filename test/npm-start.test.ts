import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { KEYS } from "./helpers/orchestrator.js";
import { describeProcesses, isAlive, killProcesses, processesUsingDirectory, processesWithEnvMarker, waitForExit, waitUntilNoProcesses, type ProcessInfo } from "./helpers/processes.js";
import { RestClient } from "./helpers/rest.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const MARKER = "TETHER_NPM_START_TEST_ID";
/** `npm start` builds first (prestart): up to date that is a few seconds, more on a loaded machine. */
const LISTEN_TIMEOUT_MS = 150_000;
const STOP_TIMEOUT_MS = 40_000;

interface NpmStart {
  npm: ChildProcess;
  npmPid: number;
  log: string[];
  marker: string;
  dataDir: string;
  url: string;
  port: number;
  server: ProcessInfo;
  npmExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** npm's stdout and stderr (shared with the server) are closed: every line is in `log`. */
  outputClosed: Promise<void>;
  cleanUp(): Promise<void>;
}

/**
 * `npm start` exactly as the README says, in its own process group (like a
 * terminal's foreground job), on a free port and a temporary data dir, marked
 * so that every process it starts can be found in /proc.
 */
async function npmStart(): Promise<NpmStart> {
  const marker = randomUUID();
  const dataDir = await realpath(await mkdtemp(join(tmpdir(), "tether-npm-start-")));
  const log: string[] = [];
  const npm = spawn("npm", ["start"], {
    cwd: repoRoot,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      [MARKER]: marker,
      TETHER_PORT: "0",
      TETHER_HOST: "127.0.0.1",
      TETHER_API_KEYS: `alice:${KEYS.alice}`,
      TETHER_DATA_DIR: dataDir,
      TETHER_LOG_LEVEL: "info",
      TETHER_SKIP_RUNTIME_INSTALL: "1",
    },
  });
  const npmExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once("exit", (code, signal) => resolve({ code, signal })));
  const outputClosed = new Promise<void>((resolve) => npm.once("close", () => resolve()));
  const cleanUp = async (): Promise<void> => {
    try {
      if (npm.pid !== undefined && npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid, "SIGKILL");
    } catch {
      // the group is gone
    }
    killProcesses([...(await processesWithEnvMarker(MARKER, marker)), ...(await processesUsingDirectory(dataDir))]);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not report listening within ${LISTEN_TIMEOUT_MS} ms.`)), LISTEN_TIMEOUT_MS);
      const onLine = (line: string): void => {
        log.push(line);
        const match = /listening on (http:\/\/[^\s"]+)/i.exec(line);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      for (const stream of [npm.stdout, npm.stderr]) if (stream) createInterface({ input: stream }).on("line", onLine);
      void npmExit.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited (code ${code}, signal ${signal}) before listening.`));
      });
    });
    const servers = (await processesWithEnvMarker(MARKER, marker)).filter((p) => /^\S*node \S*orchestrator\/dist\/server\.js$/.test(p.cmdline));
    expect(servers, describeProcesses(servers)).toHaveLength(1);
    const server = servers[0];
    if (!server || npm.pid === undefined) throw new Error("no server process");
    return { npm, npmPid: npm.pid, log, marker, dataDir, url, port: Number(new URL(url).port), server, npmExit, outputClosed, cleanUp };
  } catch (error) {
    await cleanUp();
    throw new Error(`${(error as Error).message}\n--- npm start output ---\n${log.slice(-40).join("\n")}`, { cause: error });
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** npm has exited, the server process is gone, its port refuses connections, and nothing carrying the marker is left. */
async function expectAllStopped(run: NpmStart): Promise<void> {
  const exit = await Promise.race([run.npmExit, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STOP_TIMEOUT_MS).unref())]);
  expect(exit, `npm start was still running ${STOP_TIMEOUT_MS} ms after the signal`).toBeDefined();
  expect(await waitForExit(run.server.pid, STOP_TIMEOUT_MS)).toBe(true);
  expect(await portAnswers(run.port)).toBe(false);
  const survivors = await waitUntilNoProcesses(() => processesOf(run), 10_000);
  expect(survivors, `still running:\n${describeProcesses(survivors)}`).toEqual([]);
  // npm's 'exit' can come before the last lines the server wrote to the shared pipes were read.
  await Promise.race([run.outputClosed, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
}

/**
 * What `npm start` runs: processes carrying the marker (npm, the server, an
 * unsandboxed worker) and those using the data dir (a sandboxed worker, its
 * Jupyter Server and kernel get a clean environment and see their workspace
 * through a bind mount of it).
 */
async function processesOf(run: NpmStart): Promise<ProcessInfo[]> {
  const byPid = new Map<number, ProcessInfo>();
  for (const p of [...(await processesWithEnvMarker(MARKER, run.marker)), ...(await processesUsingDirectory(run.dataDir))]) byPid.set(p.pid, p);
  return [...byPid.values()];
}

async function withNpmStart(scenario: (run: NpmStart) => Promise<void>): Promise<void> {
  const run = await npmStart();
  try {
    await scenario(run);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- npm start output ---\n${run.log.slice(-40).join("\n")}`, { cause: error });
  } finally {
    await run.cleanUp();
  }
}

describe("npm start (the README's first command) stops with its signals", () => {
  it("stops the orchestrator, its workers and kernels, and frees the port when npm gets SIGTERM", async () => {
    await withNpmStart(async (run) => {
      expect(await portAnswers(run.port)).toBe(true);
      const alice = new RestClient(run.url, KEYS.alice);
      const session = await alice.createSession();
      expect((await alice.execute(session.id, { code: "print(6*7)" })).stdout).toBe("42\n");
      // npm, the server, and a worker, its Jupyter server and a kernel (host pids: the sandbox has its own pid namespace).
      const running = await processesOf(run);
      expect(running.length, describeProcesses(running)).toBeGreaterThanOrEqual(5);
      const kernel = running.find((p) => p.cmdline.includes("ipykernel"));
      expect(kernel, describeProcesses(running)).toBeDefined();
      const kernelPid = kernel?.pid ?? 0;
      expect(await isAlive(kernelPid)).toBe(true);

      process.kill(run.npmPid, "SIGTERM");
      await expectAllStopped(run);
      expect(await isAlive(kernelPid)).toBe(false);
      expect(run.log).toContain("tether: SIGTERM: stopping workers and the server");
      expect(await run.npmExit).toEqual({ code: 0, signal: null });
    });
  }, 300_000);

  it("stops everything when npm gets SIGINT", async () => {
    await withNpmStart(async (run) => {
      process.kill(run.npmPid, "SIGINT");
      await expectAllStopped(run);
      expect(run.log).toContain("tether: SIGINT: stopping workers and the server");
    });
  }, 300_000);

  it("stops gracefully, once, on a terminal's Ctrl-C (SIGINT to the whole process group, which npm relays again)", async () => {
    await withNpmStart(async (run) => {
      process.kill(-run.npmPid, "SIGINT");
      await expectAllStopped(run);
      expect(run.log.filter((line) => line.includes("stopping workers and the server"))).toEqual(["tether: SIGINT: stopping workers and the server"]);
      expect(run.log.some((line) => line.includes("again; exiting now"))).toBe(false);
    });
  }, 300_000);

  it("stops the orchestrator when npm itself is killed (SIGKILL: nothing is forwarded)", async () => {
    await withNpmStart(async (run) => {
      process.kill(run.npmPid, "SIGKILL");
      await expectAllStopped(run);
      expect(run.log).toContain("tether: the npm process that started it is gone: stopping workers and the server");
    });
  }, 300_000);
});
