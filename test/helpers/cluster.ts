import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { startBalancer, type Balancer } from "../../infra/dev/balancer.mjs";
import { killProcesses, processesWithEnvMarker, waitUntilNoProcesses } from "./processes.js";
import { startTestRedis, freePort, type TestRedis } from "./redis-server.js";
import { RestClient } from "./rest.js";
import { TcpProxy } from "./tcp-proxy.js";
import { KEYS } from "./orchestrator.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** Every process of one test cluster carries this (replicas pass it on to their workers), so cleanup finds them all. */
const CLUSTER_MARKER = "TETHER_TEST_CLUSTER";

/** One orchestrator process of the cluster. */
export interface Replica {
  index: number;
  port: number;
  url: string;
  process: ChildProcess;
  /** Its id in the cluster (from /healthz). */
  replicaId: string;
  logFile: string;
}

export interface TestCluster {
  redis: TestRedis;
  /** Between workers and the balancer: what a worker sends can be read off the wire. */
  workerWire: TcpProxy;
  balancer: Balancer;
  /** http://127.0.0.1:<balancer port>: what clients and workers use. */
  url: string;
  replicas: Replica[];
  alice: RestClient;
  bob: RestClient;
  /** A client of one replica directly (not through the balancer). */
  direct(replica: Replica, tenant?: "alice" | "bob"): RestClient;
  /** The replica that owns a session right now (by its lease in Redis). */
  ownerOf(sessionId: string): Promise<Replica | undefined>;
  kill(replica: Replica): Promise<void>;
  /** SIGTERM and wait for the exit (a graceful hand-over). */
  stop(replica: Replica): Promise<number | null>;
  /** Starts replica `index` again on its port (a new replica id). */
  restart(replica: Replica): Promise<Replica>;
  close(): Promise<void>;
}

export interface ClusterOptions {
  replicas?: number;
  env?: Record<string, string>;
  /** More env for one replica (by index), over `env`: e.g. a warm pool on one replica only. */
  envFor?: (index: number) => Record<string, string>;
}

/**
 * Three (by default) real orchestrator processes on one real redis-server,
 * behind a round-robin TCP balancer on loopback. Workers are local processes
 * (unsandboxed: a sandbox ends with its replica) that dial the balancer.
 */
/**
 * A cluster for the tests of one file, with a Redis client on its server:
 * started before them, closed after; `use` receives both once started.
 */
export function withTestCluster(options: ClusterOptions, use: (cluster: TestCluster, redis: Redis) => void): void {
  let cluster: TestCluster | undefined;
  let redis: Redis | undefined;
  beforeAll(async () => {
    cluster = await startTestCluster(options);
    redis = new Redis(cluster.redis.url);
    use(cluster, redis);
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await cluster?.close();
  }, 60_000);
}

export async function startTestCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const marker = randomUUID();
  const redis = await startTestRedis({ persistent: true });
  const root = await realpath(await mkdtemp(join(tmpdir(), "tether-cluster-")));
  // Replica logs outlive the run (test-results/ is ignored by git): a failure is read there.
  const logDir = join(repoRoot, "test-results", "cluster", `${new Date().toISOString().replaceAll(":", "-")}-${marker.slice(0, 8)}`);
  await mkdir(logDir, { recursive: true });
  const ports = await Promise.all(Array.from({ length: options.replicas ?? 3 }, () => freePort()));
  const balancerPort = await freePort();
  const balancer = await startBalancer({ port: balancerPort, backends: ports.map((port) => ({ host: "127.0.0.1", port })) });
  const url = `http://127.0.0.1:${balancer.port}`;
  const workerWire = await TcpProxy.start();
  workerWire.upstreamPort = balancer.port;

  const launch = async (index: number, port: number): Promise<Replica> => {
    const logFile = join(logDir, `replica-${index}-${Date.now()}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(process.execPath, [join(repoRoot, "orchestrator/dist/server.js")], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        [CLUSTER_MARKER]: marker,
        TETHER_HOST: "127.0.0.1",
        TETHER_PORT: String(port),
        TETHER_PUBLIC_URL: `ws://127.0.0.1:${workerWire.port}`,
        TETHER_REDIS_URL: redis.url,
        TETHER_API_KEYS: `alice:${KEYS.alice},bob:${KEYS.bob}`,
        // Replicas may share one: each launch has its own directory.
        TETHER_DATA_DIR: join(root, "data"),
        TETHER_SANDBOX: "off",
        TETHER_REPLICA_TTL_MS: "3000",
        // Three replicas and their kernels share two cores with the rest of the suite.
        TETHER_START_TIMEOUT_MS: "180000",
        TETHER_LOG_LEVEL: process.env.TETHER_TEST_LOG_LEVEL ?? "info",
        ...options.env,
        ...options.envFor?.(index),
      },
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    const replica: Replica = { index, port, url: `http://127.0.0.1:${port}`, process: child, replicaId: "", logFile };
    replica.replicaId = await waitForHealth(replica);
    return replica;
  };

  const replicas = await Promise.all(ports.map((port, index) => launch(index, port)));
  const cluster: TestCluster = {
    redis,
    workerWire,
    balancer,
    url,
    replicas,
    alice: new RestClient(url, KEYS.alice),
    bob: new RestClient(url, KEYS.bob),
    direct: (replica, tenant = "alice") => new RestClient(replica.url, KEYS[tenant]),
    async ownerOf(sessionId) {
      const { Redis } = await import("ioredis");
      const client = new Redis(redis.url);
      try {
        const lease = await client.get(`tether:lease:${sessionId}`);
        const replicaId = lease?.replace(/:\d+$/, "");
        return cluster.replicas.find((replica) => replica.replicaId === replicaId);
      } finally {
        client.disconnect();
      }
    },
    async kill(replica) {
      if (replica.process.exitCode !== null || replica.process.signalCode !== null) return;
      const exited = new Promise((resolve) => replica.process.once("exit", resolve));
      replica.process.kill("SIGKILL");
      await exited;
    },
    async stop(replica) {
      if (replica.process.exitCode !== null || replica.process.signalCode !== null) return replica.process.exitCode;
      const exited = new Promise<number | null>((resolve) => replica.process.once("exit", (code) => resolve(code)));
      replica.process.kill("SIGTERM");
      return exited;
    },
    async restart(replica) {
      const fresh = await launch(replica.index, replica.port);
      cluster.replicas[replica.index] = fresh;
      return fresh;
    },
    async close() {
      // Sessions first, while their owners can still stop their workers.
      for (const client of [cluster.alice, cluster.bob]) {
        const listed = await client.listSessions().catch(() => ({ sessions: [] }));
        await Promise.all(listed.sessions.map((session) => client.request("DELETE", `/v1/sessions/${session.id}`).catch(() => undefined)));
      }
      await Promise.all(cluster.replicas.map((replica) => cluster.stop(replica)));
      await workerWire.close();
      await balancer.close();
      // Workers a killed replica left behind (their new owner may be gone too).
      const leftovers = await waitUntilNoProcesses(() => processesWithEnvMarker(CLUSTER_MARKER, marker), 5000);
      killProcesses(leftovers);
      await redis.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** Polls the replica's /healthz until it answers (its start takes a Python probe); its replica id. */
async function waitForHealth(replica: Replica): Promise<string> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (replica.process.exitCode !== null) throw new Error(`replica ${replica.index} exited with code ${replica.process.exitCode}; see ${replica.logFile}`);
    try {
      const response = await fetch(`${replica.url}/healthz`);
      const body: unknown = await response.json();
      if (response.ok && typeof body === "object" && body !== null && "replicaId" in body && typeof body.replicaId === "string") return body.replicaId;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`replica ${replica.index} did not answer within 60 s; see ${replica.logFile}`);
}
