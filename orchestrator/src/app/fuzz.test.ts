import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { isErrorCode, type ServerMessage } from "@tether/shared";
import { ProtocolWorkerLauncher } from "../../../test/fakes/protocol-worker.js";
import { loadConfig } from "../config.js";
import { buildApp, type TetherApp } from "./build-app.js";

/**
 * Property-based fuzzing of every edge: REST bodies and params, client
 * websocket frames, worker websocket frames. Each input must get a typed
 * error or a valid answer, the process must not crash, and the session must
 * keep working afterwards. `TETHER_FUZZ_RUNS` scales the runs (npm run fuzz).
 */
const RUNS = Number(process.env.TETHER_FUZZ_RUNS ?? 60);
const KEY = "fuzz-key";
const auth = { authorization: `Bearer ${KEY}` };

/** Strings a careless or hostile client sends: any code point, NUL, lone surrogates, control characters. */
const nastyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.string({ maxLength: 64 }),
  fc.constantFrom("", "\u0000", "\ud800", "x\u0000y", "\udfff\ud800", "../../etc/passwd", "%2e%2e/%2e%2e", "a".repeat(300), "😀".repeat(100)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => `s = "${String.fromCharCode(unit)}"`),
);
const deepNesting = fc.integer({ min: 1, max: 20_000 }).map((depth) => `${"[".repeat(depth)}${"]".repeat(depth)}`);
const anyJson = fc.jsonValue({ maxDepth: 4 });

describe("fuzzing the orchestrator's edges", () => {
  let app: TetherApp;
  let base: string;
  let launcher: ProtocolWorkerLauncher;
  let sessionId: string;

  beforeAll(async () => {
    launcher = new ProtocolWorkerLauncher({ resumable: true });
    app = buildApp(
      loadConfig({ TETHER_API_KEYS: `fuzz:${KEY}`, TETHER_LOG_LEVEL: "silent", TETHER_MAX_CLIENT_FRAME_BYTES: "65536", TETHER_MAX_SESSIONS_PER_TENANT: "1000" }),
      { launcher },
    );
    await app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const created = await app.inject({ method: "POST", url: "/v1/sessions", headers: auth });
    expect(created.statusCode).toBe(201);
    sessionId = created.json<{ id: string }>().id;
  });

  afterAll(async () => {
    await app.close();
  });

  /** The session still runs code: the real proof nothing was lost. */
  async function sessionStillWorks(id = sessionId): Promise<void> {
    const res = await app.inject({ method: "POST", url: `/v1/sessions/${id}/execute`, headers: auth, payload: { code: "still here" } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: "ok", stdout: "ran still here\n" });
  }

  /** A non-2xx answer is a typed error: a known code, a message and a hint. */
  function expectTyped(status: number, body: string, what: string): void {
    expect(status, `${what} -> ${status} ${body.slice(0, 300)}`).toBeLessThan(500);
    if (status < 300) return;
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; hint?: unknown } };
    expect(isErrorCode(parsed.error?.code), `${what}: ${body.slice(0, 300)}`).toBe(true);
    expect(typeof parsed.error?.message).toBe("string");
    expect(typeof parsed.error?.hint, `${what}: no hint in ${body.slice(0, 300)}`).toBe("string");
  }

  it("answers any REST body with a valid answer or a typed 4xx error", async () => {
    const routes = fc.constantFrom("/v1/sessions", `/v1/sessions/${"SID"}/execute`, `/v1/sessions/${"SID"}/interrupt`, `/v1/sessions/${"SID"}/restart`);
    const bodies = fc.oneof(
      anyJson.map((value) => JSON.stringify(value)),
      nastyString,
      deepNesting,
      fc.record({ code: nastyString, timeoutMs: fc.oneof(fc.integer(), fc.double(), nastyString) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
      fc.record({ code: nastyString, stdin: fc.array(nastyString, { maxLength: 3 }), extra: anyJson }, { requiredKeys: ["code"] }).map((value) => JSON.stringify(value)),
    );
    const contentTypes = fc.constantFrom("application/json", "text/plain", "application/octet-stream", "application/json; charset=utf-16", "");
    await fc.assert(
      fc.asyncProperty(routes, bodies, contentTypes, async (route, body, contentType) => {
        const url = route.replace("SID", sessionId);
        const res = await app.inject({ method: "POST", url, headers: { ...auth, ...(contentType ? { "content-type": contentType } : {}) }, payload: body });
        expectTyped(res.statusCode, res.body, `POST ${url} ${contentType} ${JSON.stringify(body.slice(0, 80))}`);
      }),
      { numRuns: RUNS * 3 },
    );
    await sessionStillWorks();
  });

  it("answers any path or session id with a valid answer or a typed error", async () => {
    const methods = fc.constantFrom("GET", "PUT", "DELETE");
    await fc.assert(
      fc.asyncProperty(methods, nastyString, nastyString, async (method, rawId, rawPath) => {
        const id = fc.sample(fc.constantFrom(sessionId, rawId), 1)[0] ?? sessionId;
        const url = `/v1/sessions/${percentEncode(id)}/files/${rawPath.split("/").map(percentEncode).join("/")}`;
        const res = await app.inject({ method, url, headers: { ...auth, "content-type": "application/octet-stream" }, ...(method === "PUT" ? { payload: "bytes" } : {}) });
        expectTyped(res.statusCode, res.body, `${method} ${url}`);
      }),
      { numRuns: RUNS * 2 },
    );
    await sessionStillWorks();
  });

  it("answers any client websocket frame with protocol_error or a valid answer, and the stream keeps working", async () => {
    const stream = await openStream(`${base.replace("http", "ws")}/v1/sessions/${sessionId}/stream`);
    try {
      const valid = { type: "execute", requestId: "r", code: "1" };
      const mutated = fc.record({ key: fc.constantFrom("type", "requestId", "code", "timeoutMs", "value", "extra"), value: anyJson }).map(({ key, value }) => JSON.stringify({ ...valid, [key]: value }));
      const frames = fc.oneof(nastyString, anyJson.map((value) => JSON.stringify(value)), mutated, deepNesting, fc.constantFrom(JSON.stringify({ type: "input_reply", requestId: "nobody", value: "x" })));
      let probe = 0;
      await fc.assert(
        fc.asyncProperty(frames, async (frame) => {
          stream.socket.send(frame);
          // After any frame, the same connection still runs code.
          const requestId = `probe-${probe++}`;
          stream.socket.send(JSON.stringify({ type: "execute", requestId, code: "probe" }));
          const seen = await stream.until((m) => m.type === "done" && m.requestId === requestId);
          for (const message of seen) {
            if (message.type === "protocol_error") expect(isErrorCode(message.code), JSON.stringify(message)).toBe(true);
          }
        }),
        { numRuns: RUNS * 3 },
      );
    } finally {
      stream.socket.terminate();
    }
  });

  it("closes a client stream that sends invalid UTF-8 with 1007, and a new stream works", async () => {
    const stream = await openStream(`${base.replace("http", "ws")}/v1/sessions/${sessionId}/stream`);
    const closed = new Promise<number>((resolve) => stream.socket.once("close", (code) => resolve(code)));
    stream.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await closed).toBe(1007);
    await sessionStillWorks();
  });

  it("survives any frame a worker sends: typed protocol_error back, and the session keeps working (resumed if the worker had to go)", async () => {
    const workerFrames = fc.oneof(
      nastyString,
      anyJson.map((value) => JSON.stringify(value)),
      deepNesting,
      fc.record({ type: fc.constantFrom("stream", "display", "result", "error", "done", "status", "kernel_died", "input_request", "call_result", "stream_ack", "stream_end", "ack", "hello", "resume", "worker_ready"), requestId: fc.oneof(nastyString, fc.constant(null)), extra: anyJson }).map((value) => JSON.stringify(value)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(workerFrames, { minLength: 1, maxLength: 8 }), fc.boolean(), async (frames, sequenced) => {
        const created = await app.inject({ method: "POST", url: "/v1/sessions", headers: auth });
        expect(created.statusCode).toBe(201);
        const id = created.json<{ id: string }>().id;
        const worker = launcher.workers.at(-1)!;
        for (const frame of frames) {
          if (sequenced) worker.sendSequencedRaw(frame);
          else worker.sendRaw(frame);
        }
        await sessionStillWorks(id);
        const deleted = await app.inject({ method: "DELETE", url: `/v1/sessions/${id}`, headers: auth });
        expect(deleted.statusCode).toBe(204);
      }),
      { numRuns: RUNS },
    );
  });
});

/** Percent-encodes every byte of the UTF-8 form (lone surrogates become U+FFFD, as on any real wire). */
function percentEncode(text: string): string {
  return [...Buffer.from(text, "utf8")].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
}

/** A client stream that collects messages and waits for the one it needs. */
async function openStream(url: string): Promise<{ socket: WebSocket; until(predicate: (m: ServerMessage) => boolean): Promise<ServerMessage[]> }> {
  const socket = new WebSocket(url, { headers: auth });
  const inbox: ServerMessage[] = [];
  let wake: (() => void) | undefined;
  socket.on("message", (data) => {
    inbox.push(JSON.parse(data.toString()) as ServerMessage);
    wake?.();
  });
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  return {
    socket,
    async until(predicate) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const index = inbox.findIndex(predicate);
        if (index >= 0) return inbox.splice(0, index + 1);
        if (Date.now() > deadline || socket.readyState !== WebSocket.OPEN) throw new Error(`no matching message; got ${JSON.stringify(inbox).slice(0, 500)}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
    },
  };
}
