#!/usr/bin/env node
// `npm run cluster`: a Tether cluster on one machine, for trying failover by
// hand. It starts, and stops again on Ctrl-C or SIGTERM:
//   redis-server  127.0.0.1:6380, AOF (appendfsync everysec) in <data dir>/cluster/redis
//   3 replicas    node orchestrator/dist/server.js on 127.0.0.1:8081-8083, sharing
//                 Redis, the data dir and its API key; local workers, unsandboxed
//   a balancer    127.0.0.1:8080, round robin, skips a replica that refuses
//                 (infra/dev/balancer.mjs): clients AND workers go through it
// Then it prints the PIDs and replica ids, and how to kill one (kill -9 <pid>)
// and watch its sessions move. It restarts nothing by itself.
//
// Env (all optional):
//   TETHER_CLUSTER_PORT           the balancer's port, default 8080
//   TETHER_CLUSTER_REPLICA_PORTS  comma-separated replica ports, default 8081,8082,8083
//   TETHER_CLUSTER_REDIS_PORT     default 6380 (not 6379: Debian's redis-server package runs one there)
//   TETHER_DATA_DIR               default .tether, as for `npm start` (same API key file)
//   TETHER_API_KEYS, TETHER_REPLICA_TTL_MS, TETHER_LOG_LEVEL, TETHER_PYTHON, ... reach every replica.
//   TETHER_DRAIN_TIMEOUT_MS       default 5000 here (30000 for a replica on its own): how long
//                                 Ctrl-C lets running executions end before replicas hand them over.
//
// Stopping: SIGTERM to every replica (each hands its sessions over and exits), then
// the workers they leave behind (a handed-over worker waits for a new owner that
// is not coming), then Redis, then the balancer. A second Ctrl-C kills everything
// at once. Everything is stopped by PID; nothing else is touched.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startBalancer } from "./balancer.mjs";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SERVER = path.join(repo, "orchestrator/dist/server.js");
/** Every process this run starts carries it (replicas pass it on to their workers): stop finds the workers by it. */
const RUN_MARKER = "TETHER_DEV_CLUSTER_RUN";
/** Replica log lines worth showing while trying failover (the rest stay in the log files). */
const SHOWN = new Set([
  "adopted the session from a replica that is gone",
  "worker taken over from another replica",
  "the adopted worker was lost",
  "sessions handed over",
  "another replica took the session over; letting it go here",
  "Redis is unreachable; requests that need it answer 503 until it is back",
  "Redis is reachable again",
]);
const REPLICA_START_TIMEOUT_MS = 120_000;
const REPLICA_STOP_TIMEOUT_MS = 60_000;
const WORKER_STOP_TIMEOUT_MS = 10_000;

const env = process.env;
const ports = {
  balancer: readPort("TETHER_CLUSTER_PORT", "8080"),
  replicas: (env.TETHER_CLUSTER_REPLICA_PORTS || "8081,8082,8083").split(",").map((p, i) => readPort(`TETHER_CLUSTER_REPLICA_PORTS[${i}]`, p)),
  redis: readPort("TETHER_CLUSTER_REDIS_PORT", "6380"),
};
const dataDir = path.resolve(env.TETHER_DATA_DIR || ".tether");
const clusterDir = path.join(dataDir, "cluster");
const logDir = path.join(clusterDir, "logs");
const runFile = path.join(clusterDir, "run.json");
const runId = randomUUID();
const say = (line) => console.log(`cluster: ${line}`);

/** What this run started, stopped in reverse on the way out. */
const started = { redis: undefined, replicas: [], balancer: undefined };
let stopping;

function readPort(name, value) {
  const port = Number(value.trim());
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${name} must be a TCP port, got '${value}'.`);
  return port;
}

function fail(message) {
  console.error(`cluster: ${message}`);
  process.exit(1);
}

async function main() {
  if (!existsSync(SERVER)) fail(`${path.relative(process.cwd(), SERVER)} is missing: run \`npm run build\` (npm run cluster does).`);
  const redisServer = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => existsSync(p)) ?? (await onPath("redis-server"));
  if (!redisServer) fail("redis-server is not installed. On Debian/Ubuntu: sudo apt-get install -y redis-server");
  await refuseIfStillRunning();
  for (const [what, port] of [["the balancer", ports.balancer], ["Redis", ports.redis], ...ports.replicas.map((p, i) => [`replica ${i + 1}`, p])]) {
    if (!(await portFree(port))) fail(`port ${port} (${what}) is in use on 127.0.0.1; stop what listens there or pick others with TETHER_CLUSTER_PORT, TETHER_CLUSTER_REPLICA_PORTS, TETHER_CLUSTER_REDIS_PORT.`);
  }
  await mkdir(path.join(clusterDir, "redis"), { recursive: true, mode: 0o700 });
  await mkdir(logDir, { recursive: true });

  // One key for all three, generated before any replica starts (each would otherwise race to create its own).
  let apiKey;
  if (!env.TETHER_API_KEYS?.trim()) {
    const { ensureApiKeyFile } = await import(pathToFileURL(path.join(repo, "orchestrator/dist/api-key-file.js")).href);
    apiKey = await ensureApiKeyFile(dataDir);
  }

  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("exit", () => {
    for (const child of [...started.replicas.map((r) => r.child), started.redis?.child]) if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  await startRedis(redisServer);
  await saveRunFile();
  const redisUrl = `redis://127.0.0.1:${ports.redis}`;
  started.balancer = await startBalancer({ port: ports.balancer, backends: ports.replicas.map((port) => ({ host: "127.0.0.1", port })) });
  started.replicas = ports.replicas.map((port, index) => startReplica(index, port, redisUrl));
  await saveRunFile();
  await Promise.all(started.replicas.map((replica) => replica.ready));
  if (stopping) return;
  await saveRunFile();
  printBanner(apiKey);
}

function startRedis(binary) {
  const dir = path.join(clusterDir, "redis");
  const args = ["--port", String(ports.redis), "--bind", "127.0.0.1", "--protected-mode", "yes", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""];
  const child = spawn(binary, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...env, [RUN_MARKER]: runId } });
  started.redis = { child, dir };
  const log = createWriteStream(path.join(logDir, "redis.log"), { flags: "a" });
  child.stderr.pipe(log);
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      log.write(chunk);
      if (output.length < 20_000) output += chunk;
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${signal ?? code}):\n${output.split("\n").slice(-15).join("\n")}`));
    });
  });
}

function startReplica(index, port, redisUrl) {
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
  const replica = { index, port, url: `http://127.0.0.1:${port}`, child, pid: child.pid, replicaId: undefined, logFile, ready: undefined };
  child.stderr.pipe(log, { end: false });
  createInterface({ input: child.stdout }).on("line", (line) => {
    log.write(`${line}\n`);
    if (!line.startsWith("{")) return;
    try {
      const entry = JSON.parse(line);
      if (SHOWN.has(entry.msg)) say(`replica ${index + 1}: ${entry.msg}${entry.sessionId ? ` (${entry.sessionId})` : ""}`);
    } catch {
      // not a log line
    }
  });
  child.once("exit", (code, signal) => {
    log.end();
    if (stopping) return;
    say(`replica ${index + 1} (pid ${child.pid}, ${replica.replicaId ?? "not started"}) exited (${signal ?? `code ${code}`}); log: ${path.relative(process.cwd(), logFile)}`);
    if (replica.replicaId) say(`its sessions move to the replicas left when another replica needs them, once its key in Redis lapses (TETHER_REPLICA_TTL_MS, default 5000)`);
  });
  replica.ready = waitForHealth(replica).then((id) => {
    replica.replicaId = id;
  });
  return replica;
}

/** Polls /healthz until the replica names itself (its start includes a Python probe). */
async function waitForHealth(replica) {
  const deadline = Date.now() + REPLICA_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (replica.child.exitCode !== null || replica.child.signalCode !== null) {
      throw new Error(`replica ${replica.index + 1} exited during its start; see ${replica.logFile}:\n${await tail(replica.logFile, 15)}`);
    }
    try {
      const body = await (await fetch(`${replica.url}/healthz`)).json();
      if (typeof body?.replicaId === "string") return body.replicaId;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`replica ${replica.index + 1} did not answer /healthz within ${REPLICA_START_TIMEOUT_MS / 1000} s; see ${replica.logFile}`);
}

function printBanner(apiKey) {
  const rel = (p) => path.relative(process.cwd(), p) || ".";
  const base = `http://127.0.0.1:${ports.balancer}`;
  const prefix = env.TETHER_REDIS_PREFIX || "tether:";
  const keyLines = !apiKey
    ? ["API keys   from TETHER_API_KEYS (the same for every replica)"]
    : apiKey.created
      ? [`API key    generated now, shown once; saved in ${apiKey.path}:`, `           ${apiKey.key}`]
      : [`API key    in ${apiKey.path} (shared by the three replicas)`];
  const keyExpr = apiKey ? `$(cat ${rel(apiKey.path)})` : "<your key>";
  const lines = [
    "",
    "Tether cluster on 127.0.0.1 (infra/dev/cluster.mjs)",
    `balancer   ${base}   clients and workers connect here`,
    ...started.replicas.map((r) => `replica ${r.index + 1}  ${r.url}   pid ${r.pid}   ${r.replicaId}`),
    `redis      redis://127.0.0.1:${ports.redis}   pid ${started.redis.child.pid}   AOF in ${rel(started.redis.dir)}`,
    ...keyLines,
    `logs       ${rel(logDir)}/`,
    "WARNING: workers run unsandboxed (TETHER_SANDBOX=off: a sandbox would end with its replica); user code runs as you. Keep it on this machine.",
    "",
    "Try failover:",
    `  KEY=${keyExpr}`,
    `  S=$(curl -s -X POST -H "Authorization: Bearer $KEY" ${base}/v1/sessions | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')`,
    `  curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"code":"x = 41"}' ${base}/v1/sessions/$S/execute`,
    `  redis-cli -p ${ports.redis} GET ${prefix}lease:$S        # <replica id>:<epoch>: its owner`,
    "  kill -9 <that replica's pid>",
    `  curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"code":"print(x + 1)"}' ${base}/v1/sessions/$S/execute`,
    "  (42, from the same kernel, a few seconds later: another replica adopted the session and its worker resumed there)",
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
    for (const pid of [...started.replicas.map((r) => r.pid), ...(await workerPids()), started.redis?.child.pid]) kill(pid, "SIGKILL");
    process.exit(1);
  }
  stopping = { at: Date.now() };
  say(`${signal}: stopping the replicas (they hand their sessions over), their workers, Redis, the balancer`);
  let code = exitCode;
  try {
    await Promise.all(started.replicas.map((r) => stopChild(r.child, "SIGTERM", REPLICA_STOP_TIMEOUT_MS)));
    // Handed over to nobody: the workers would wait for a new owner (redialing 4 heartbeats); they stop their kernels on SIGTERM.
    const workers = await workerPids();
    for (const pid of workers) kill(pid, "SIGTERM");
    const deadline = Date.now() + WORKER_STOP_TIMEOUT_MS;
    let left = workers;
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(100);
      left = await workerPids();
    }
    for (const pid of left) kill(pid, "SIGKILL");
    if (started.redis) await stopChild(started.redis.child, "SIGTERM", 10_000);
    await started.balancer?.close();
    say(`stopped ${started.replicas.length} replicas, ${workers.length} worker process(es), Redis and the balancer`);
  } catch (error) {
    console.error("cluster: error while stopping:", error);
    code = 1;
  }
  await writeFile(runFile, "{}\n").catch(() => undefined);
  process.exit(code);
}

/** Sends `signal`, waits for the exit; SIGKILL after `timeoutMs`. */
async function stopChild(child, signal, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** Live processes (not this one, not a replica or Redis) that carry this run's marker: workers, their Jupyter servers and kernels. */
async function workerPids() {
  const own = new Set([process.pid, ...started.replicas.map((r) => r.pid), started.redis?.child.pid]);
  const found = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name) || own.has(Number(name))) continue;
    try {
      const environ = await readFile(`/proc/${name}/environ`, "utf8");
      if (!environ.split("\0").includes(`${RUN_MARKER}=${runId}`)) continue;
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      if (!/^[ZX]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3))) found.push(Number(name));
    } catch {
      // exited, or not ours to read
    }
  }
  return found;
}

function kill(pid, signal) {
  try {
    if (pid) process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** PIDs of this run, so that a next run can tell whether this one still runs. */
async function saveRunFile() {
  const pids = [started.redis?.child.pid, ...started.replicas.map((r) => r.pid)].filter(Boolean);
  await writeFile(runFile, `${JSON.stringify({ runId, pids, startedAt: new Date().toISOString() })}\n`);
}

/** A previous run killed with SIGKILL leaves its replicas or Redis behind: say so rather than fight over ports. */
async function refuseIfStillRunning() {
  let previous;
  try {
    previous = JSON.parse(await readFile(runFile, "utf8"));
  } catch {
    return;
  }
  const alive = [];
  for (const pid of previous.pids ?? []) {
    try {
      const environ = await readFile(`/proc/${pid}/environ`, "utf8");
      if (environ.split("\0").includes(`${RUN_MARKER}=${previous.runId}`)) alive.push(pid);
    } catch {
      // gone
    }
  }
  if (alive.length > 0) fail(`a previous run (${runFile}) still has processes: ${alive.join(", ")}. Stop them first: kill ${alive.join(" ")}`);
}

async function onPath(name) {
  for (const dir of (env.PATH ?? "").split(":")) if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  return undefined;
}

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function tail(file, lines) {
  return (await readFile(file, "utf8").catch(() => "")).split("\n").slice(-lines).join("\n");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

main().catch(async (error) => {
  // Stopping already (a Ctrl-C during the start): stop() ends the process.
  if (stopping) return;
  console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`);
  await stop("start failed", 1);
});
