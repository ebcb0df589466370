// Process plumbing for infra/dev/cluster.mjs (`npm run cluster`) and the
// cluster bench: a throwaway redis-server, free loopback ports, waiting for a
// replica's /healthz, stopping children by PID, finding the processes of a run
// by an environment marker. Everything binds 127.0.0.1.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The redis-server binary (Debian's package, /usr/local, or on PATH), or undefined. */
export function findRedisServer(env = process.env) {
  const dirs = ["/usr/bin", "/usr/local/bin", ...(env.PATH ?? "").split(":").filter(Boolean)];
  return dirs.map((dir) => path.join(dir, "redis-server")).find((file) => existsSync(file));
}

/**
 * A redis-server on 127.0.0.1:`port` in a fresh temp dir, without persistence:
 * the cluster's state lives as long as the run. `close()` stops it (SIGTERM)
 * and removes the dir.
 * @param {{ binary: string; port: number; env?: NodeJS.ProcessEnv; onOutput?: (chunk: string) => void }} options
 */
export async function startRedis({ binary, port, env = process.env, onOutput }) {
  const dir = await mkdtemp(path.join(tmpdir(), "tether-cluster-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "yes", "--dir", dir, "--appendonly", "no", "--save", ""];
  const child = spawn(binary, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
  const close = async () => {
    await stopChild(child, "SIGTERM", 10_000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await new Promise((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk) => {
        onOutput?.(chunk);
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
  } catch (error) {
    await close();
    throw error;
  }
  return { child, pid: child.pid, port, dir, url: `redis://127.0.0.1:${port}`, close };
}

/** True when nothing listens on 127.0.0.1:`port`. */
export function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1 right now (the kernel's pick). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `url`/healthz until it answers 200 (the start includes a Python probe:
 * seconds); the replica id it names (undefined without Redis). Throws when
 * `child` exits first.
 */
export async function waitForReplica(url, child, timeoutMs, describe = url) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${describe} exited during its start (${child.signalCode ?? child.exitCode})`);
    try {
      const response = await fetch(`${url}/healthz`);
      const body = await response.json();
      if (response.ok) return typeof body?.replicaId === "string" ? body.replicaId : undefined;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${describe} did not answer /healthz within ${timeoutMs / 1000} s`);
}

/** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. */
export async function stopChild(child, signal, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** `process.kill` that ignores a process already gone. */
export function kill(pid, signal) {
  try {
    if (pid) process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Live (not zombie) processes other than `exclude` whose environment holds `name=value`. */
export async function pidsWithEnv(name, value, exclude = []) {
  const wanted = `${name}=${value}`;
  const skip = new Set([process.pid, ...exclude]);
  const found = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || skip.has(Number(entry))) continue;
    try {
      if (!(await readFile(`/proc/${entry}/environ`, "utf8")).split("\0").includes(wanted)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z" && state !== "X") found.push(Number(entry));
    } catch {
      // exited, or not ours to read
    }
  }
  return found;
}

/** Pino's numeric levels, for the one-line form of a replica's log entry. */
const LEVELS = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** Fields worth keeping on the one line (the log file keeps the full JSON). */
const CONTEXT = ["sessionId", "workerId", "replicaId", "requestId", "code", "err"];

/**
 * One short line for a replica's stdout line: pino JSON becomes
 * `INFO message sessionId=…`; other text passes as is. Per-request access
 * logs return undefined (one per curl; the log file has them).
 */
export function shortLogLine(line) {
  if (!line.startsWith("{")) return line;
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (entry.msg === "incoming request" || entry.msg === "request completed") return undefined;
  const context = CONTEXT.filter((key) => entry[key] !== undefined).map((key) => `${key}=${typeof entry[key] === "object" ? (entry[key].message ?? JSON.stringify(entry[key])) : entry[key]}`);
  return [LEVELS[entry.level] ?? entry.level, entry.msg, ...context].join(" ");
}
