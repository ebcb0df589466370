import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";

const mainJs = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "main.js");

/**
 * A first kernel that never answers kernel_info (as one that lost its ZMQ
 * ports to another kernel starting at the same moment on the same host, and
 * was replaced behind the connection's back): the worker starts another and
 * reports ready, instead of waiting until the orchestrator gives up.
 */
describe("a kernel that does not answer at its first start", () => {
  let dir: string;
  let server: WebSocketServer;
  let worker: ChildProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tether-kernel-start-"));
    // JUPYTER_PATH comes first in the kernelspec search: this `python3` hangs the first time it is launched.
    const spec = path.join(dir, "jupyter", "kernels", "python3");
    await mkdir(spec, { recursive: true });
    const marker = path.join(dir, "first-launch-done");
    const script = `if [ ! -e '${marker}' ]; then touch '${marker}'; exec sleep 600; fi; exec /usr/bin/python3 -m ipykernel_launcher -f "$0"`;
    await writeFile(path.join(spec, "kernel.json"), JSON.stringify({ argv: ["/bin/sh", "-c", script, "{connection_file}"], display_name: "Python 3", language: "python" }));
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server.once("listening", resolve));
  });

  afterAll(async () => {
    if (worker && worker.exitCode === null) worker.kill("SIGKILL");
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it("starts another kernel and reports ready", { timeout: 90_000 }, async () => {
    const { port } = server.address() as { port: number };
    const connected = new Promise<WebSocket>((resolve) => server.once("connection", resolve));
    const workspace = path.join(dir, "workspace");
    await mkdir(workspace);
    worker = spawn(process.execPath, [mainJs], {
      env: {
        ...process.env,
        JUPYTER_PATH: path.join(dir, "jupyter"),
        TETHER_ORCHESTRATOR_URL: `ws://127.0.0.1:${port}/v1/workers/connect`,
        TETHER_JOIN_TOKEN: "join-token-for-test",
        TETHER_LAUNCH_ID: `kernel-start-it-${process.pid}`,
        TETHER_WORKSPACE: workspace,
        TETHER_LOG_LEVEL: "error",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const socket = await connected;
    const heartbeat = setInterval(() => socket.ping(), 1000);
    try {
      const messages: { type: string }[] = [];
      const ready = new Promise<{ type: string; kernel?: unknown }>((resolve) =>
        socket.on("message", (data) => {
          const message = JSON.parse(data.toString()) as { type: string; kernel?: unknown };
          messages.push(message);
          if (message.type === "hello") socket.send(JSON.stringify({ type: "welcome", workerId: "w-1", sessionId: "s-1", heartbeatIntervalMs: 1000 }));
          if (message.type === "worker_ready") resolve(message);
        }),
      );
      expect(await ready).toMatchObject({ kernel: { name: "python3", language: "python" } });
      expect(existsSync(path.join(dir, "first-launch-done"))).toBe(true);
      // The lost first kernel was not reported as a death of the session's kernel.
      expect(messages.map((message) => message.type)).not.toContain("kernel_died");
      // A clean stop takes Jupyter Server and both kernels (the hung one too) with it.
      const exited = new Promise((resolve) => worker?.once("exit", resolve));
      socket.send(JSON.stringify({ type: "shutdown", reason: "test over" }));
      expect(await exited).toBe(0);
    } finally {
      clearInterval(heartbeat);
    }
  });
});
