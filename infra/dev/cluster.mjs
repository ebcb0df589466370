#!/usr/bin/env node
// `npm run cluster`: a Tether cluster on one machine, for trying failover by
// hand. It starts, and stops again on Ctrl-C or SIGTERM:
//   redis-server  127.0.0.1:<free port>, in a temp dir, no persistence (removed on stop)
//   3 replicas    node orchestrator/dist/server.js on 127.0.0.1:8081-8083, sharing
//                 Redis, the data dir and its API key; local workers, unsandboxed
//   a balancer    127.0.0.1:8080, round robin, skips a replica that refuses
//                 (infra/dev/balancer.mjs): clients AND workers go through it
// Replica logs are shown one line per entry, prefixed `[replica N]`; the full
// JSON is in <data dir>/cluster/logs. It restarts nothing by itself.
//
// Env (all optional):
//   TETHER_CLUSTER_PORT           the balancer's port, default 8080
//   TETHER_CLUSTER_REPLICA_PORTS  comma-separated replica ports, default 8081,8082,8083
//   TETHER_CLUSTER_REDIS_PORT     default: a free port (6379 is often Debian's own redis-server)
//   TETHER_DATA_DIR               default .tether, as for `npm start` (same API key file)
//   TETHER_API_KEYS, TETHER_REPLICA_TTL_MS, TETHER_LOG_LEVEL, TETHER_PYTHON, ... reach every replica.
//   TETHER_DRAIN_TIMEOUT_MS       default 5000 here (30000 for a replica on its own): how long
//                                 Ctrl-C lets running executions end before replicas hand them over.
//
// Stopping: every session is deleted (Redis goes with the run, so they could not
// outlive it), then SIGTERM to every replica, then the workers left behind (one
// whose owner was killed and not yet replaced), then Redis, then the balancer. A
// second Ctrl-C kills everything at once. Everything is stopped by PID; nothing
// else is touched.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startBalancer } from "./balancer.mjs";
import { findRedisServer, freePort, kill, pidsWithEnv, portFree, shortLogLine, sleep, startRedis, stopChild, waitForReplica } from "./cluster-procs.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SERVER = path.join(repo, "orchestrator/dist/server.js");
/** Every process this run starts carries it (replicas pass it on to their workers): stop finds the workers by it. */
const RUN_MARKER = "TETHER_DEV_CLUSTER_RUN";
const REPLICA_START_TIMEOUT_MS = 120_000;
const REPLICA_STOP_TIMEOUT_MS = 60_000;
const WORKER_STOP_TIMEOUT_MS = 10_000;
const SESSION_DELETE_TIMEOUT_MS = 20_000;

const env = process.env;
const ports = {
  balancer: readPort("TETHER_CLUSTER_PORT", env.TETHER_CLUSTER_PORT || "8080"),
  replicas: (env.TETHER_CLUSTER_REPLICA_PORTS || "8081,8082,8083").split(",").map((p) => readPort("TETHER_CLUSTER_REPLICA_PORTS", p)),
  redis: env.TETHER_CLUSTER_REDIS_PORT ? readPort("TETHER_CLUSTER_REDIS_PORT", env.TETHER_CLUSTER_REDIS_PORT) : undefined,
};
const dataDir = path.resolve(env.TETHER_DATA_DIR || ".tether");
const logDir = path.join(dataDir, "cluster", "logs");
const runId = randomUUID();
const say = (line) => console.log(`cluster: ${line}`);

/** What this run started, stopped in reverse on the way out. */
const started = { redis: undefined, replicas: [], balancer: undefined };
let stopping;
let ready = false;
/** Set while Redis starts: a Ctrl-C then waits for it, so as to stop it too. */
let redisStarting;
/** Every tenant's key: stop deletes their sessions. */
let apiKeys = [];

function readPort(name, value) {
  const port = Number(value.trim());
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${name} must hold TCP ports, got '${value}'.`);
  return port;
}

function fail(message) {
  console.error(`cluster: ${message}`);
  process.exit(1);
}

async function main() {
  if (!existsSync(SERVER)) fail(`${path.relative(process.cwd(), SERVER)} is missing: run \`npm run build\` (npm run cluster does).`);
  const redisServer = findRedisServer(env);
  if (!redisServer) fail("redis-server is not installed. On Debian/Ubuntu: sudo apt-get install -y redis-server");
  ports.redis ??= await freePort();
  const wanted = [["the balancer", ports.balancer], ["Redis", ports.redis], ...ports.replicas.map((p, i) => [`replica ${i + 1}`, p])];
  for (const [what, port] of wanted) {
    if (!(await portFree(port))) fail(`port ${port} (${what}) is in use on 127.0.0.1; stop what listens there or pick others with TETHER_CLUSTER_PORT, TETHER_CLUSTER_REPLICA_PORTS, TETHER_CLUSTER_REDIS_PORT.`);
  }
  await mkdir(logDir, { recursive: true });

  // One key for all replicas, made before any starts (each would otherwise race to create its own).
  let apiKey;
  if (!env.TETHER_API_KEYS?.trim()) {
    const { ensureApiKeyFile } = await import(pathToFileURL(path.join(repo, "orchestrator/dist/api-key-file.js")).href);
    apiKey = await ensureApiKeyFile(dataDir);
    apiKeys = [apiKey.key];
  } else {
    const { parseApiKeys } = await import(pathToFileURL(path.join(repo, "orchestrator/dist/config.js")).href);
    apiKeys = parseApiKeys(env.TETHER_API_KEYS).map((entry) => entry.key);
  }

  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("exit", () => {
    for (const pid of [...started.replicas.map((r) => r.pid), started.redis?.pid]) kill(pid, "SIGKILL");
  });

  const redisLog = createWriteStream(path.join(logDir, "redis.log"), { flags: "a" });
  redisStarting = startRedis({ binary: redisServer, port: ports.redis, env: { ...env, [RUN_MARKER]: runId }, onOutput: (chunk) => redisLog.write(chunk) });
  started.redis = await redisStarting;
  if (stopping) return;
  started.balancer = await startBalancer({ port: ports.balancer, backends: ports.replicas.map((port) => ({ host: "127.0.0.1", port })) });
  started.replicas = ports.replicas.map((port, index) => startReplica(index, port, started.redis.url));
  await Promise.all(started.replicas.map((replica) => replica.ready));
  if (stopping) return;
  ready = true;
  printBanner(apiKey);
}

function startReplica(index, port, redisUrl) {
  const name = `replica ${index + 1}`;
  const logFile = path.join(logDir, `replica-${index + 1}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const replicaEnv = {
    ...env,
    [RUN_MARKER]: runId,
    TETHER_HOST: "127.0.0.1",
    TETHER_PORT: String(port),
    TETHER_REPLICA_URL: `http://127.0.0.1:${port}`,
    // Workers dial the balancer: when their replica dies they redial it and reach another one.
    TETHER_PUBLIC_URL: `ws://127.0.0.1:${ports.balancer}`,
    TETHER_REDIS_URL: redisUrl,
    TETHER_DATA_DIR: dataDir,
    TETHER_LAUNCHER: "local",
    // A sandbox ends with the replica that started it: in a cluster the local launcher runs workers unsandboxed.
    TETHER_SANDBOX: "off",
    TETHER_DRAIN_TIMEOUT_MS: env.TETHER_DRAIN_TIMEOUT_MS || "5000",
  };
  // Its own process group: a terminal's Ctrl-C reaches this script only, which stops replicas before Redis.
  const child = spawn(process.execPath, [SERVER], { cwd: repo, detached: true, stdio: ["ignore", "pipe", "pipe"], env: replicaEnv });
  const replica = { index, port, url: `http://127.0.0.1:${port}`, child, pid: child.pid, replicaId: undefined, logFile };
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      log.write(`${line}\n`);
      // A replica's own start banner (how to curl it alone) is superseded by this script's; its `tether:` lines stay.
      if (stream === child.stdout && !line.startsWith("{") && !line.startsWith("tether:")) return;
      const short = shortLogLine(line);
      if (short !== undefined) console.log(`[${name}] ${short}`);
    });
  }
  child.once("exit", (code, signal) => {
    if (stopping) return;
    say(`${name} (pid ${child.pid}, ${replica.replicaId ?? "not started"}) exited (${signal ?? `code ${code}`}); log: ${path.relative(process.cwd(), logFile)}`);
    if (replica.replicaId) say(`its sessions move to a replica left when a request needs them, once its key in Redis lapses (TETHER_REPLICA_TTL_MS, default 5000)`);
  });
  replica.ready = waitForReplica(replica.url, child, REPLICA_START_TIMEOUT_MS, `${name} (log: ${logFile})`).then((id) => {
    replica.replicaId = id;
  });
  return replica;
}

function printBanner(apiKey) {
  const rel = (p) => path.relative(process.cwd(), p) || ".";
  const base = `http://127.0.0.1:${ports.balancer}`;
  const prefix = env.TETHER_REDIS_PREFIX || "tether:";
  const keyLines = !apiKey
    ? ["API keys   from TETHER_API_KEYS (the same for every replica)"]
    : apiKey.created
      ? [`API key    generated now, shown once; saved in ${apiKey.path}:`, `           ${apiKey.key}`]
      : [`API key    in ${apiKey.path} (shared by the replicas)`];
  const keyExpr = apiKey ? `$(cat ${rel(apiKey.path)})` : "<your key>";
  const json = `-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json'`;
  const lines = [
    "",
    "Tether cluster on 127.0.0.1 (infra/dev/cluster.mjs)",
    `balancer   ${base}   clients and workers connect here`,
    ...started.replicas.map((r) => `replica ${r.index + 1}  ${r.url}   pid ${r.pid}   ${r.replicaId}`),
    `redis      ${started.redis.url}   pid ${started.redis.pid}   (temp dir ${started.redis.dir}, removed on stop)`,
    ...keyLines,
    `logs       ${rel(logDir)}/`,
    "WARNING: workers run unsandboxed (TETHER_SANDBOX=off: a sandbox would end with its replica); user code runs as you. Keep it on this machine.",
    "",
    "Try failover:",
    `  KEY=${keyExpr}`,
    `  S=$(curl -s -X POST -H "Authorization: Bearer $KEY" ${base}/v1/sessions | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')`,
    `  curl -s ${json} -d '{"code":"x = 1 + 1; print(x)"}' ${base}/v1/sessions/$S/execute`,
    `  redis-cli -p ${ports.redis} GET ${prefix}lease:$S        # <replica id>:<epoch>: its owner`,
    "  kill -9 <that replica's pid>",
    `  curl -s ${json} -d '{"code":"print(x)"}' ${base}/v1/sessions/$S/execute`,
    "  (2, from the same kernel: 503 OWNER_UNAVAILABLE until the dead replica's key lapses, then another replica adopts the session)",
    "Nothing restarts by itself. Ctrl-C stops everything this started.",
    "cluster ready",
  ];
  console.log(lines.join("\n"));
}

async function stop(signal, exitCode = 0) {
  if (stopping) {
    // A terminal's Ctrl-C under npm arrives twice (the terminal's and npm's relay): the same request.
    if (Date.now() - stopping.at < 1000) return;
    say(`${signal} again: killing everything now`);
    for (const pid of [...started.replicas.map((r) => r.pid), ...(await workerPids()), started.redis?.pid]) kill(pid, "SIGKILL");
    process.exit(1);
  }
  stopping = { at: Date.now() };
  say(`${signal}: deleting the sessions, stopping the replicas, their workers, Redis, the balancer`);
  let code = exitCode;
  try {
    if (ready) await deleteSessions();
    await Promise.all(started.replicas.map((r) => stopChild(r.child, "SIGTERM", REPLICA_STOP_TIMEOUT_MS)));
    // Left behind: the worker of a session not deleted (its owner killed, not yet replaced) redials for a new owner; SIGTERM stops its kernel.
    const workers = await workerPids();
    for (const pid of workers) kill(pid, "SIGTERM");
    const deadline = Date.now() + WORKER_STOP_TIMEOUT_MS;
    let left = workers;
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(100);
      left = await workerPids();
    }
    for (const pid of left) kill(pid, "SIGKILL");
    started.redis ??= await redisStarting?.catch(() => undefined);
    await started.redis?.close();
    await started.balancer?.close();
    say(`stopped ${started.replicas.length} replicas, ${workers.length} worker process(es), Redis and the balancer`);
  } catch (error) {
    console.error("cluster: error while stopping:", error);
    code = 1;
  }
  process.exit(code);
}

/**
 * Redis goes with this run, so its sessions cannot outlive it: delete them
 * while their owners can still stop their workers and remove their
 * workspaces (a replica's SIGTERM would hand them over to nobody, or scale
 * them to zero into snapshots no record points at). Bounded: a session whose
 * owner was just killed answers 503 and is left to the worker cleanup below.
 */
async function deleteSessions() {
  const base = `http://127.0.0.1:${ports.balancer}`;
  const signal = AbortSignal.timeout(SESSION_DELETE_TIMEOUT_MS);
  let deleted = 0;
  for (const key of apiKeys) {
    const headers = { Authorization: `Bearer ${key}` };
    try {
      const listed = await (await fetch(`${base}/v1/sessions`, { headers, signal })).json();
      const answers = await Promise.all((listed.sessions ?? []).map((s) => fetch(`${base}/v1/sessions/${s.id}`, { method: "DELETE", headers, signal }).catch(() => undefined)));
      deleted += answers.filter((answer) => answer?.status === 204).length;
    } catch {
      // timed out, or this key's tenant cannot list: the worker cleanup below still runs
    }
  }
  say(`deleted ${deleted} session(s)`);
}

/** Live processes of this run other than the replicas and Redis: workers, their Jupyter servers and kernels. */
function workerPids() {
  return pidsWithEnv(RUN_MARKER, runId, [...started.replicas.map((r) => r.pid), started.redis?.pid]);
}

main().catch(async (error) => {
  // Stopping already (a Ctrl-C during the start): stop() ends the process.
  if (stopping) return;
  console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`);
  await stop("start failed", 1);
});
