import type { AddressInfo } from "node:net";
import type { TetherApp } from "../app/build-app.js";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import {
  FILE_CHUNK_BYTES,
  PROTOCOL_VERSION,
  STREAM_WINDOW_BYTES,
  decodeBinaryFrame,
  encodeBinaryFrame,
  type OrchestratorMessage,
  type WorkerMessage,
} from "@tether/shared";
import { buildApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, LaunchHandle, Launcher, LaunchRequest } from "../launchers/launcher.js";
import { ObservedArray, sessionReaches } from "../../../test/helpers/signals.js";

type Behaviour = (worker: FakeWorker, message: OrchestratorMessage) => void;

/** A worker in-process: dials the gateway like the real one and answers per `behaviour`. */
class FakeWorker {
  readonly socket: WebSocket;
  readonly received = new ObservedArray<OrchestratorMessage>();
  readonly binary: Buffer[] = [];
  closeCode: number | undefined;

  constructor(
    readonly request: LaunchRequest,
    behaviour: Behaviour,
    options: { autoPong?: boolean; protocolVersion?: string; token?: string } = {},
  ) {
    this.socket = new WebSocket(request.orchestratorUrl, { autoPong: options.autoPong ?? true });
    this.socket.on("error", () => {});
    this.socket.on("open", () =>
      this.send({ type: "hello", protocolVersion: options.protocolVersion ?? PROTOCOL_VERSION, agentVersion: "fake", token: options.token ?? request.joinToken, capabilities: [] }),
    );
    this.socket.on("message", (data, isBinary) => {
      if (isBinary) {
        this.binary.push(data as Buffer);
        behaviour(this, { type: "stream_ack", streamId: -1, bytes: (data as Buffer).byteLength });
        return;
      }
      const message = JSON.parse(data.toString()) as OrchestratorMessage;
      this.received.push(message);
      // An empty workspace: what a shutdown snapshots of a ready session.
      if (message.type === "files_list") this.send({ type: "call_result", callId: message.callId, ok: true, value: { files: [], truncated: false } });
      behaviour(this, message);
    });
    this.socket.on("close", (code) => (this.closeCode = code));
  }

  send(message: WorkerMessage): void {
    this.socket.send(JSON.stringify(message));
  }
}

/** Behaviour of a healthy worker: ready at once; `print(...)`-like executions echo their code to stdout. */
const healthy: Behaviour = (worker, message) => {
  switch (message.type) {
    case "welcome":
      worker.send({ type: "worker_ready", kernel: { name: "python3", language: "python", languageVersion: "3" }, timings: { processStartMs: 0, jupyterReadyMs: 0, kernelReadyMs: 0 } });
      return;
    case "execute": {
      const { requestId } = message;
      if (message.code === "hang") return;
      worker.send({ type: "stream", requestId, name: "stdout", text: `ran ${message.code}\n` });
      worker.send({ type: "display", requestId, data: { "text/plain": "v1" }, metadata: {}, displayId: "d", update: false });
      worker.send({ type: "display", requestId, data: { "text/plain": "v2" }, metadata: {}, displayId: "d", update: true });
      worker.send({ type: "done", requestId, status: "ok", executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false });
      return;
    }
    default:
      return;
  }
};

class FakeLauncher implements Launcher {
  readonly kind = "fake";
  readonly workers = new ObservedArray<FakeWorker>();
  /** Settles each launch's `exited`, as the real launcher does when the process ends. */
  readonly exits: ((value: LaunchExit) => void)[] = [];
  constructor(private readonly behaviour: Behaviour | undefined) {}
  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    let exit!: (value: LaunchExit) => void;
    const exited = new Promise<LaunchExit>((resolve) => (exit = resolve));
    this.exits.push(exit);
    if (this.behaviour) this.workers.push(new FakeWorker(request, this.behaviour));
    else this.requests.push(request);
    return {
      launchId: request.launchId,
      exited,
      stop: async (reason) => {
        for (const worker of this.workers) worker.socket.close();
        exit({ code: 0, signal: null, reason, stderrTail: [] });
      },
    };
  }
  readonly requests = new ObservedArray<LaunchRequest>();
  async stopAll(): Promise<void> {}
}

describe("the worker gateway and a session's worker", () => {
  let app: TetherApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function start(behaviour: Behaviour | undefined, env: Record<string, string> = {}) {
    const launcher = new FakeLauncher(behaviour);
    app = buildApp(loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", ...env }), { launcher });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: "Bearer key-a", ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are probed field by field
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
    };
    return { launcher, base, call };
  }

  it("starts a session once the worker is ready and folds its events into the REST response", async () => {
    const { call } = await start(healthy);
    const created = await call("POST", "/v1/sessions", { metadata: { chat: "c1" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: "ready", metadata: { chat: "c1" }, kernel: { name: "python3" } });
    const executed = await call("POST", `/v1/sessions/${created.body!.id}/execute`, { code: "1+1" });
    expect(executed.status).toBe(200);
    expect(executed.body).toMatchObject({ status: "ok", stdout: "ran 1+1\n", outputs: [{ type: "display_data", data: { "text/plain": "v2" }, displayId: "d" }] });
  });

  it("passes REST stdin as lines mode, and none without it", async () => {
    const { call, launcher } = await start(healthy);
    const { body } = await call("POST", "/v1/sessions");
    await call("POST", `/v1/sessions/${body!.id}/execute`, { code: "a", stdin: ["x", "y"] });
    await call("POST", `/v1/sessions/${body!.id}/execute`, { code: "b", timeoutMs: 10_000_000 });
    const executes = launcher.workers[0]!.received.filter((m) => m.type === "execute");
    expect(executes.map((m) => m.stdin)).toEqual([{ mode: "lines", lines: ["x", "y"] }, { mode: "none" }]);
    expect(executes[1]!.timeoutMs).toBe(600_000);
  });

  it("refuses a spent token as reused, a wrong one as invalid, an old protocol with 4426", async () => {
    const { call, launcher } = await start(healthy);
    await call("POST", "/v1/sessions");
    const request = launcher.workers[0]!.request;
    const outcome = (options: ConstructorParameters<typeof FakeWorker>[2]) =>
      new Promise<{ refusal: OrchestratorMessage | undefined; code: number }>((resolve) => {
        const worker = new FakeWorker(request, () => {}, options);
        worker.socket.on("close", (code) => resolve({ refusal: worker.received[0], code }));
      });
    expect(await outcome({})).toEqual({ refusal: { type: "join_refused", code: ErrorCodes.WORKER_TOKEN_REUSED, message: expect.any(String) }, code: 4401 });
    expect(await outcome({ token: "forged" })).toMatchObject({ refusal: { code: ErrorCodes.WORKER_TOKEN_INVALID }, code: 4401 });
    expect(await outcome({ protocolVersion: "2.0" })).toMatchObject({ refusal: { code: ErrorCodes.PROTOCOL_VERSION_UNSUPPORTED }, code: 4426 });
  });

  it("refuses an expired token", async () => {
    const { call, launcher } = await start(undefined, { TETHER_JOIN_TOKEN_TTL_MS: "1", TETHER_START_TIMEOUT_MS: "2000" });
    const creating = call("POST", "/v1/sessions");
    await launcher.requests.until((r) => r.length > 0);
    // Let the 1 ms token expire.
    await new Promise((resolve) => setTimeout(resolve, 10));
    const refusal = await new Promise<OrchestratorMessage | undefined>((resolve) => {
      const worker = new FakeWorker(launcher.requests[0]!, () => {});
      worker.socket.on("close", () => resolve(worker.received[0]));
    });
    expect(refusal).toMatchObject({ type: "join_refused", code: ErrorCodes.WORKER_TOKEN_EXPIRED });
    expect(await creating).toMatchObject({ status: 504, body: { error: { code: ErrorCodes.SESSION_START_TIMEOUT } } });
  });

  it("answers 502 with the worker's reason when it fails before ready", async () => {
    const { call } = await start((worker, message) => {
      if (message.type === "welcome") worker.send({ type: "worker_failed", error: { code: ErrorCodes.KERNEL_UNAVAILABLE, message: "no kernel for you" } });
    });
    const created = await call("POST", "/v1/sessions");
    expect(created.status).toBe(502);
    expect(created.body!.error.code).toBe(ErrorCodes.SESSION_START_FAILED);
    expect(created.body!.error.message).toContain("no kernel for you");
  });

  it("ends the running and queued executions with worker_lost when the worker disconnects, stops the session, and resumes it on the next execute", async () => {
    const { call, launcher } = await start(healthy);
    const { body } = await call("POST", "/v1/sessions");
    const running = call("POST", `/v1/sessions/${body!.id}/execute`, { code: "hang" });
    const queued = call("POST", `/v1/sessions/${body!.id}/execute`, { code: "next" });
    await launcher.workers.until((w) => w.length > 0);
    await launcher.workers[0]!.received.until((m) => m.some((x) => x.type === "execute"));
    launcher.workers[0]!.socket.terminate();
    for (const result of [await running, await queued]) {
      expect(result.body).toMatchObject({ status: "worker_lost", failure: { code: ErrorCodes.WORKER_LOST } });
    }
    const info = await call("GET", `/v1/sessions/${body!.id}`);
    expect(info.body).toMatchObject({ status: "stopped", phase: "stopped", stopReason: { kind: "worker_lost" } });
    const resumed = await call("POST", `/v1/sessions/${body!.id}/execute`, { code: "again" });
    expect(resumed).toMatchObject({ status: 200, body: { status: "ok", stdout: "ran again\n", resumed: true, stateLost: true } });
    expect(launcher.workers).toHaveLength(2);
  });

  it("treats a worker that stops answering pings as lost after 3 intervals, and stops the session", async () => {
    const launcher = new FakeLauncher(undefined);
    app = buildApp(loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", TETHER_HEARTBEAT_INTERVAL_MS: "100" }), { launcher });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const session = app.tether.registry.create("alice", {});
    const starting = session.start();
    await launcher.requests.until((r) => r.length > 0);
    const worker = new FakeWorker(launcher.requests[0]!, healthy, { autoPong: false });
    await starting;
    const startedAt = Date.now();
    await sessionReaches(session, "stopped");
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(session.stopReason?.kind).toBe("worker_lost");
    worker.socket.terminate();
  });

  it("stops reading the worker while a websocket client is not reading, and resumes when it drains", async () => {
    const chunk = "x".repeat(16 * 1024);
    const events = 1500; // ~24 MB of stream events
    const { base, call, launcher } = await start((worker, message) => {
      if (message.type !== "execute") return healthy(worker, message);
      for (let i = 0; i < events; i++) worker.send({ type: "stream", requestId: message.requestId, name: "stdout", text: chunk });
      worker.send({ type: "done", requestId: message.requestId, status: "ok", executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false });
    });
    const { body } = await call("POST", "/v1/sessions");
    const client = new WebSocket(`${base.replace("http", "ws")}/v1/sessions/${body!.id}/stream`, { headers: { authorization: "Bearer key-a" } });
    let received = 0;
    const done = new Promise<void>((resolve) =>
      client.on("message", (data) => {
        const message = JSON.parse(data.toString()) as { type: string };
        if (message.type === "stream") received += 1;
        if (message.type === "done") resolve();
      }),
    );
    await new Promise((resolve) => client.once("open", resolve));
    // Stop reading the client's TCP socket: the orchestrator's sends to it back up.
    const tcp = (client as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    client.send(JSON.stringify({ type: "execute", requestId: "flood", code: "flood" }));
    const worker = launcher.workers[0]!;
    await worker.received.until((m) => m.some((x) => x.type === "execute"));
    // The worker queued everything at once; an orchestrator that keeps reading drains that in a few ms on loopback.
    // Some time later, the worker still holding most of it means the orchestrator stopped reading.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(worker.socket.bufferedAmount).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    tcp.resume();
    await done;
    expect(received).toBe(events);
    client.close();
  });

  it("keeps a slow client's backpressure on the new worker when a lost worker is replaced", async () => {
    const chunk = "x".repeat(16 * 1024);
    const flood = (worker: FakeWorker, requestId: string) => {
      for (let i = 0; i < 1500; i++) worker.send({ type: "stream", requestId, name: "stdout", text: chunk });
      worker.send({ type: "done", requestId, status: "ok", executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false });
    };
    const { base, call, launcher } = await start((worker, message) => {
      if (message.type === "execute" && message.code === "flood") flood(worker, message.requestId);
      else healthy(worker, message);
    });
    const { body } = await call("POST", "/v1/sessions");
    const session = app!.tether.registry.get("alice", body!.id);
    // Reaches into privates: the serving worker's connection and its pausers.
    type Paused = { lifecycle: { worker?: { connection?: { pausers: Set<object> } } } };
    const pausers = () => (session as unknown as Paused).lifecycle.worker?.connection?.pausers.size ?? 0;
    // The client stream holds the worker back through session.backpressure: wait for that call.
    const backpressureApplied = new Promise<void>((resolve) => {
      const pause = session.backpressure.pause.bind(session.backpressure);
      session.backpressure.pause = (pauser) => {
        pause(pauser);
        resolve();
      };
    });
    const client = new WebSocket(`${base.replace("http", "ws")}/v1/sessions/${body!.id}/stream`, { headers: { authorization: "Bearer key-a" } });
    const done = new ObservedArray<string>();
    client.on("message", (data) => {
      const message = JSON.parse(data.toString()) as { type: string; requestId: string };
      if (message.type === "done") done.push(message.requestId);
    });
    await new Promise((resolve) => client.once("open", resolve));
    const tcp = (client as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    client.send(JSON.stringify({ type: "execute", requestId: "first", code: "flood" }));
    // The slow client makes the session stop reading the first worker...
    await backpressureApplied;
    // ...whose process then dies while held back (the launcher reports the exit), and the session stops.
    launcher.workers[0]!.socket.terminate();
    launcher.exits[0]!({ code: null, signal: "SIGKILL", reason: "killed", stderrTail: [] });
    await sessionReaches(session, "stopped");
    client.send(JSON.stringify({ type: "execute", requestId: "second", code: "flood" }));
    await launcher.workers.until((w) => w.length > 1);
    await launcher.workers[1]!.received.until((m) => m.some((x) => x.type === "execute"));
    // The client still reads nothing: its backpressure must hold the replacement worker back too.
    expect(pausers()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(launcher.workers[1]!.socket.bufferedAmount).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    tcp.resume();
    await done.until((d) => d.includes("second"));
    expect(done.includes("first")).toBe(true);
    client.close();
  });

  it("streams an upload to the worker without ever exceeding the credit window", async () => {
    let unacked = 0;
    let maxUnacked = 0;
    let total = 0;
    const { base, call } = await start((worker, message) => {
      healthy(worker, message);
      if (message.type === "stream_ack" && message.streamId === -1) {
        // A binary chunk arrived: hold the credit back a little, as a slow disk would.
        const frame = decodeBinaryFrame(worker.binary.at(-1)!)!;
        unacked += frame.payload.byteLength;
        total += frame.payload.byteLength;
        maxUnacked = Math.max(maxUnacked, unacked);
        setTimeout(() => {
          unacked -= frame.payload.byteLength;
          worker.send({ type: "stream_ack", streamId: frame.streamId, bytes: frame.payload.byteLength });
        }, 2);
      }
      if (message.type === "stream_end") {
        const upload = worker.received.find((m) => m.type === "file_upload");
        if (upload) worker.send({ type: "call_result", callId: upload.callId, ok: true, value: { size: total } });
      }
    });
    const { body } = await call("POST", "/v1/sessions");
    const bytes = Buffer.alloc(12 * 1024 * 1024, 7);
    const res = await fetch(`${base}/v1/sessions/${body!.id}/files/data/blob.bin`, {
      method: "PUT",
      headers: { authorization: "Bearer key-a", "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ path: "data/blob.bin", size: bytes.byteLength });
    expect(total).toBe(bytes.byteLength);
    expect(maxUnacked).toBeLessThanOrEqual(STREAM_WINDOW_BYTES);
  });

  it("streams a download from the worker and maps its errors to HTTP codes", async () => {
    const content = Buffer.alloc(3 * FILE_CHUNK_BYTES + 5, 1);
    const { base, call } = await start((worker, message) => {
      healthy(worker, message);
      if (message.type !== "file_download") return;
      if (message.path === "missing.txt") {
        worker.send({ type: "call_result", callId: message.callId, ok: false, error: { code: ErrorCodes.FILE_NOT_FOUND, message: "nope" } });
        return;
      }
      worker.send({ type: "call_result", callId: message.callId, ok: true, value: { size: content.byteLength } });
      for (let offset = 0; offset < content.byteLength; offset += FILE_CHUNK_BYTES) {
        worker.socket.send(encodeBinaryFrame(message.streamId, content.subarray(offset, offset + FILE_CHUNK_BYTES)));
      }
      worker.send({ type: "stream_end", streamId: message.streamId });
    });
    const { body } = await call("POST", "/v1/sessions");
    const ok = await fetch(`${base}/v1/sessions/${body!.id}/files/a.bin`, { headers: { authorization: "Bearer key-a" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-length")).toBe(String(content.byteLength));
    expect(Buffer.from(await ok.arrayBuffer()).equals(content)).toBe(true);
    const missing = await call("GET", `/v1/sessions/${body!.id}/files/missing.txt`);
    expect(missing).toMatchObject({ status: 404, body: { error: { code: ErrorCodes.FILE_NOT_FOUND } } });
  });
});
