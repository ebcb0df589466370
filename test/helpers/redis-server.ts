import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A real redis-server (the Debian package) on a free loopback port, in a temp dir, stopped by its PID. */
export interface TestRedis {
  port: number;
  url: string;
  /** Stops it (SIGKILL by default: the abrupt kind; with persistence every write was already on disk). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (after stop): replicas reconnect to the same URL. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

const REDIS_SERVER = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((path) => existsSync(path));

/** `persistent`: AOF with fsync on every write (what the README recommends), so a restart keeps everything. */
export async function startTestRedis(options: { persistent?: boolean } = {}): Promise<TestRedis> {
  if (!REDIS_SERVER) throw new Error("redis-server is not installed: `apt-get install -y redis-server` (.ci/run installs it).");
  const dir = await mkdtemp(join(tmpdir(), "tether-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    // No persistence, loopback only: a test database that leaves nothing behind.
    const persistence = options.persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir, "--protected-mode", "yes"];
    const started = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = started;
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
      started.stdout?.setEncoding("utf8");
      started.stdout?.on("data", (chunk: string) => {
        output += chunk;
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      started.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with code ${code}:\n${output}`));
      });
    });
  };

  const stop = async (signal: NodeJS.Signals = "SIGKILL"): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill(signal);
    await exited;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    restart: start,
    close: async () => {
      await stop("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}
