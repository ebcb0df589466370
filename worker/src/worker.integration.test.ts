import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { ErrorCodes, PROTOCOL_VERSION, type WorkerMessage } from "@tether/shared";

const mainJs = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "main.js");

/** A tiny orchestrator: the worker's messages in arrival order, awaited by predicate. */
class FakeOrchestrator {
  private readonly inbox: WorkerMessage[] = [];
  private wake: (() => void)[] = [];
  constructor(readonly socket: WebSocket) {
    socket.on("message", (data, isBinary) => {
      if (isBinary) return;
      this.inbox.push(JSON.parse(data.toString()) as WorkerMessage);
      const waiting = this.wake;
      this.wake = [];
      waiting.forEach((resolve) => resolve());
    });
  }
  send(msg: unknown): void {
    this.socket.send(JSON.stringify(msg));
  }
  async next<T extends WorkerMessage>(match: (msg: WorkerMessage) => msg is T): Promise<T>;
  async next(match: (msg: WorkerMessage) => boolean): Promise<WorkerMessage>;
  async next(match: (msg: WorkerMessage) => boolean): Promise<WorkerMessage> {
    for (;;) {
      const index = this.inbox.findIndex(match);
      if (index >= 0) return this.inbox.splice(index, 1)[0] as WorkerMessage;
      await new Promise<void>((resolve) => this.wake.push(resolve));
    }
  }
  /** Sends execute and collects its events up to and including done. */
  async execute(requestId: string, code: string): Promise<WorkerMessage[]> {
    this.send({ type: "execute", requestId, code, timeoutMs: 30_000, stdin: { mode: "none" } });
    const events: WorkerMessage[] = [];
    for (;;) {
      const event = await this.next((msg) => "requestId" in msg && msg.requestId === requestId);
      events.push(event);
      if (event.type === "done") return events;
    }
  }
}

function launchProcesses(launchId: string): Promise<string[]> {
  return readdir("/proc").then(async (entries) => {
    const found: string[] = [];
    for (const pid of entries.filter((name) => /^\d+$/.test(name))) {
      const environ = await readFile(`/proc/${pid}/environ`, "latin1").catch(() => "");
      if (environ.split("\0").includes(`TETHER_LAUNCH_ID=${launchId}`)) found.push(pid);
    }
    return found;
  });
}

describe("worker agent against a fake orchestrator", () => {
  let server: WebSocketServer;
  let worker: ChildProcess;
  let workspace: string;
  let orchestrator: FakeOrchestrator;
  let exitCode: Promise<number | null>;
  let heartbeat: NodeJS.Timeout | undefined;
  const launchId = `worker-it-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    workspace = await mkdtemp(path.join(tmpdir(), "tether-worker-it-"));
    server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve) => server.once("listening", resolve));
    const { port } = server.address() as { port: number };
    const connected = new Promise<WebSocket>((resolve) => server.once("connection", resolve));
    worker = spawn(process.execPath, [mainJs], {
      env: {
        ...process.env,
        TETHER_ORCHESTRATOR_URL: `ws://127.0.0.1:${port}/v1/workers/connect`,
        TETHER_JOIN_TOKEN: "join-token-for-test",
        TETHER_LAUNCH_ID: launchId,
        TETHER_WORKSPACE: workspace,
        TETHER_LOG_LEVEL: process.env.WORKER_IT_LOG_LEVEL ?? "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    exitCode = new Promise((resolve) => worker.once("exit", (code) => resolve(code)));
    orchestrator = new FakeOrchestrator(await connected);
    // Like the real gateway: ws pings every heartbeat interval, or the worker leaves after 3.
    heartbeat = setInterval(() => orchestrator.socket.ping(), 1000);
  });

  afterAll(async () => {
    clearInterval(heartbeat);
    if (worker.exitCode === null) worker.kill("SIGKILL");
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(workspace, { recursive: true, force: true });
  });

  it("says hello with its token, then reports ready once the kernel is idle", async () => {
    const hello = await orchestrator.next((msg) => msg.type === "hello");
    expect(hello).toMatchObject({ protocolVersion: PROTOCOL_VERSION, token: "join-token-for-test", capabilities: expect.arrayContaining(["jupyter-kernel"]) });
    orchestrator.send({ type: "welcome", workerId: "w-1", sessionId: "s-1", heartbeatIntervalMs: 1000 });
    const ready = await orchestrator.next((msg) => msg.type === "worker_ready");
    expect(ready).toMatchObject({ kernel: { name: "python3", language: "python" } });
  });

  it("runs print(1) in the workspace and ends with done ok", async () => {
    const events = await orchestrator.execute("r-print", "print(1)");
    expect(events).toEqual([
      { type: "stream", requestId: "r-print", name: "stdout", text: "1\n" },
      expect.objectContaining({ type: "done", status: "ok", kernelRestarted: false, stateLost: false }),
    ]);
    const cwd = await orchestrator.execute("r-cwd", "import os; print(os.getcwd(), os.environ.get('TETHER_JOIN_TOKEN'))");
    expect(cwd[0]).toMatchObject({ type: "stream", text: `${await import("node:fs/promises").then((fs) => fs.realpath(workspace))} None\n` });
  });

  it("reports a kernel death as kernel_died then done kernel_died, and the next execute works", async () => {
    const events = await orchestrator.execute("r-die", "import os; os._exit(1)");
    expect(events.map((event) => event.type)).toEqual(["kernel_died", "done"]);
    expect(events[1]).toMatchObject({ status: "kernel_died", kernelRestarted: true, stateLost: true, failure: { code: ErrorCodes.KERNEL_DIED } });
    const after = await orchestrator.execute("r-after", "x=1");
    expect(after).toEqual([expect.objectContaining({ type: "done", status: "ok" })]);
  });

  it("answers a bad frame with protocol_error and keeps working", async () => {
    orchestrator.socket.send("{not json");
    const error = await orchestrator.next((msg) => msg.type === "protocol_error");
    expect(error).toMatchObject({ code: ErrorCodes.PROTOCOL_MALFORMED_JSON });
  });

  it("shuts down on request with exit code 0 and leaves no process of its launch", async () => {
    orchestrator.send({ type: "shutdown", reason: "test over" });
    expect(await exitCode).toBe(0);
    // The kernel runs in its own session; give its exit a moment to be reaped by init.
    const deadline = Date.now() + 5000;
    let left = await launchProcesses(launchId);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = await launchProcesses(launchId);
    }
    expect(left).toEqual([]);
  });
});

describe("worker configuration errors", () => {
  it("takes its join token file away before it spawns Jupyter Server early, and ends that server when its configuration turns out invalid", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tether-worker-early-"));
    try {
      const tokenFile = path.join(dir, "join-token");
      await writeFile(tokenFile, "tok");
      // An interpreter that records what it saw when Jupyter Server was spawned.
      const marker = path.join(dir, "spawned");
      const python = path.join(dir, "python");
      await writeFile(python, `#!/bin/sh\n[ -e '${tokenFile}' ] && echo token-present > '${marker}' || echo token-gone > '${marker}'\nexec /usr/bin/python3 "$@"\n`);
      await chmod(python, 0o755);
      const launchId = `worker-it-early-${process.pid}-${Date.now()}`;
      const worker = spawn(process.execPath, [mainJs], {
        env: { ...process.env, TETHER_ORCHESTRATOR_URL: "ws://127.0.0.1:1/v1/workers/connect", TETHER_JOIN_TOKEN_FILE: tokenFile, TETHER_PYTHON: python, TETHER_LAUNCH_ID: launchId, TETHER_WORKSPACE: dir, TETHER_LOG_LEVEL: "loud" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      worker.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => worker.once("exit", resolve));
      expect(code).toBe(1);
      expect(stderr).toContain(ErrorCodes.CONFIG_INVALID);
      expect(await readFile(marker, "utf8")).toBe("token-gone\n");
      expect(existsSync(tokenFile)).toBe(false);
      expect(await launchProcesses(launchId)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports an invalid TETHER_LOG_LEVEL as CONFIG_INVALID and exits 1", async () => {
    const worker = spawn(process.execPath, [mainJs], {
      env: { ...process.env, TETHER_ORCHESTRATOR_URL: "ws://127.0.0.1:1/v1/workers/connect", TETHER_JOIN_TOKEN: "tok", TETHER_LOG_LEVEL: "loud" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    worker.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => worker.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr).toContain(ErrorCodes.CONFIG_INVALID);
    expect(stderr).toContain("TETHER_LOG_LEVEL");
  });
});
