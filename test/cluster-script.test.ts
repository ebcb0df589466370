import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, realpath, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { KEYS } from "./helpers/orchestrator.js";
import { describeProcesses, isAlive, killProcesses, processesWithEnvMarker, waitUntilNoProcesses, type ProcessInfo } from "./helpers/processes.js";
import { freePort } from "./helpers/redis-server.js";
import { RestClient } from "./helpers/rest.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const MARKER = "TETHER_CLUSTER_SCRIPT_TEST_ID";
/** Three replicas each probe Python at start: seconds, more on a loaded 2-core machine. */
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 60_000;

interface ClusterRun {
  child: ChildProcess;
  marker: string;
  log: string[];
  balancerPort: number;
  redisPort: number;
  /** Balancer, replicas and Redis. */
  ports: number[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  cleanUp(): Promise<void>;
}

/** `node infra/dev/cluster.mjs` on free ports and a temp data dir, marked so that every process it starts can be found in /proc. */
async function startClusterScript(): Promise<ClusterRun> {
  const marker = randomUUID();
  const dataDir = await realpath(await mkdtemp(join(tmpdir(), "tether-cluster-script-")));
  const [balancerPort, redisPort, ...replicaPorts] = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
  if (balancerPort === undefined || redisPort === undefined) throw new Error("no free ports");
  const log: string[] = [];
  const child = spawn(process.execPath, ["infra/dev/cluster.mjs"], {
    cwd: repoRoot,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      [MARKER]: marker,
      TETHER_CLUSTER_PORT: String(balancerPort),
      TETHER_CLUSTER_REPLICA_PORTS: replicaPorts.join(","),
      TETHER_CLUSTER_REDIS_PORT: String(redisPort),
      TETHER_API_KEYS: `alice:${KEYS.alice}`,
      TETHER_DATA_DIR: dataDir,
      TETHER_LOG_LEVEL: "info",
    },
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const cleanUp = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      // After a failed assertion: the script's own stop first, SIGKILL if it hangs.
      child.kill("SIGTERM");
      const stopped = await Promise.race([exit.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STOP_TIMEOUT_MS).unref())]);
      if (!stopped) child.kill("SIGKILL");
    }
    killProcesses([...(await processesWithEnvMarker(MARKER, marker)), ...(await redisOnPort(redisPort))]);
    await rm(dataDir, { recursive: true, force: true });
  };
  const run: ClusterRun = { child, marker, log, balancerPort, redisPort, ports: [balancerPort, redisPort, ...replicaPorts], exit, cleanUp };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the cluster was not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const onLine = (line: string): void => {
        log.push(line);
        if (line === "cluster ready") {
          clearTimeout(timer);
          resolve();
        }
      };
      for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on("line", onLine);
      void exit.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`cluster.mjs exited (code ${code}, signal ${signal}) before it was ready`));
      });
    });
    return run;
  } catch (error) {
    await cleanUp();
    throw new Error(`${(error as Error).message}\n--- cluster.mjs output ---\n${log.slice(-40).join("\n")}`, { cause: error });
  }
}

/**
 * redis-server rewrites its argv and environment area for its process title
 * ("redis-server 127.0.0.1:<port>"), so the marker cannot find it: its title can.
 */
async function redisOnPort(port: number): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const title = cmdline.replaceAll("\0", " ").trim();
    if (new RegExp(`redis-server 127\\.0\\.0\\.1:${port}$`).test(title)) found.push({ pid: Number(entry), cmdline: title });
  }
  return found;
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

/** SIGTERM to the script: it exits 0, and no process it started and no port it used is left. */
async function expectStopsEverything(run: ClusterRun, kernelPid: number): Promise<void> {
  run.child.kill("SIGTERM");
  const exit = await Promise.race([run.exit, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), STOP_TIMEOUT_MS).unref())]);
  expect(exit, `cluster.mjs was still running ${STOP_TIMEOUT_MS} ms after SIGTERM`).toEqual({ code: 0, signal: null });
  const survivors = await waitUntilNoProcesses(async () => [...(await processesWithEnvMarker(MARKER, run.marker)), ...(await redisOnPort(run.redisPort))], 10_000);
  expect(survivors, `still running:\n${describeProcesses(survivors)}`).toEqual([]);
  expect(await isAlive(kernelPid)).toBe(false);
  for (const port of run.ports) expect(await portAnswers(port), `port ${port}`).toBe(false);
  // Redis goes with the run: its sessions are deleted, not handed over to nobody.
  expect(run.log).toContain("cluster: deleted 1 session(s)");
  expect(run.log.some((line) => line.startsWith("cluster: stopped 3 replicas"))).toBe(true);
}

async function withClusterScript(scenario: (run: ClusterRun, alice: RestClient) => Promise<void>): Promise<void> {
  const run = await startClusterScript();
  try {
    await scenario(run, new RestClient(`http://127.0.0.1:${run.balancerPort}`, KEYS.alice));
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- cluster.mjs output ---\n${run.log.slice(-40).join("\n")}`, { cause: error });
  } finally {
    await run.cleanUp();
  }
}

/** The pid the banner prints for the replica with this id. */
function bannerPid(run: ClusterRun, replicaId: string): number {
  const line = run.log.find((entry) => /^replica \d+ /.test(entry) && entry.endsWith(replicaId));
  const pid = Number(/ pid (\d+) /.exec(line ?? "")?.[1]);
  if (!Number.isInteger(pid)) throw new Error(`no banner line for ${replicaId}`);
  return pid;
}

/**
 * What the docs tell a client to do while a session moves: a 503
 * (SESSION_OWNER_UNAVAILABLE until the dead owner's key lapses) or a dropped
 * connection means ask again after Retry-After.
 */
async function executeThroughFailover(alice: RestClient, sessionId: string, code: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let retryAfterS = 1;
    try {
      const response = await alice.request("POST", `/v1/sessions/${sessionId}/execute`, { json: { code } });
      if (response.status === 200) return response.json<{ stdout: string }>().stdout;
      if (response.status !== 503) throw new Error(`HTTP ${response.status} ${response.text()}`);
      retryAfterS = Number(response.headers["retry-after"] ?? 1);
    } catch (error) {
      if (!(error instanceof Error) || !/ECONNRESET|socket hang up|ECONNREFUSED/.test(error.message)) throw error;
    }
    if (Date.now() > deadline) throw new Error("no execute succeeded within 60 s of the kill");
    await new Promise((resolve) => setTimeout(resolve, retryAfterS * 1000));
  }
}

describe("npm run cluster (infra/dev/cluster.mjs)", () => {
  it("serves sessions through its balancer and, on SIGTERM, stops every process it started and frees its ports", async () => {
    await withClusterScript(async (run, alice) => {
      for (const port of run.ports) expect(await portAnswers(port), `port ${port}`).toBe(true);
      expect(run.log.some((line) => line.startsWith("[replica 1] "))).toBe(true);
      const session = await alice.createSession();
      const result = await alice.execute(session.id, { code: "import os\nprint(1 + 1)\nprint(os.getpid())" });
      const [sum, kernelPid] = result.stdout.trim().split("\n");
      expect(sum).toBe("2");
      expect(await isAlive(Number(kernelPid))).toBe(true);
      const started = await processesWithEnvMarker(MARKER, run.marker);
      // The script, three replicas, the session's worker, Jupyter server and kernel.
      expect(started.length, describeProcesses(started)).toBeGreaterThanOrEqual(7);
      expect(await redisOnPort(run.redisPort)).toHaveLength(1);

      await expectStopsEverything(run, Number(kernelPid));
    });
  }, 300_000);

  it("follows its printed walk-through: after kill -9 of a session's owner the same kernel answers through the balancer, and SIGTERM still stops everything", async () => {
    await withClusterScript(async (run, alice) => {
      const session = await alice.createSession();
      const before = await alice.execute(session.id, { code: "import os\nx = 1 + 1\nprint(os.getpid())" });
      const kernelPid = Number(before.stdout.trim());
      const { Redis } = await import("ioredis");
      const redis = new Redis(`redis://127.0.0.1:${run.redisPort}`);
      const lease = await redis.get(`tether:lease:${session.id}`).finally(() => redis.disconnect());
      const owner = bannerPid(run, lease?.replace(/:\d+$/, "") ?? "");

      process.kill(owner, "SIGKILL");
      expect(await executeThroughFailover(alice, session.id, "print(x)\nprint(os.getpid())")).toBe(`2\n${kernelPid}\n`);
      expect(run.log.some((line) => line.includes("adopted the session from a replica that is gone"))).toBe(true);

      // The dead replica's worker now belongs to another replica; the script's stop still finds it.
      await expectStopsEverything(run, kernelPid);
    });
  }, 300_000);
});
