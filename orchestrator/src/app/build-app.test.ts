import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import type { TetherApp } from "./build-app.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "./build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, LaunchHandle, Launcher } from "../launchers/launcher.js";

/** A launcher whose workers never dial back: sessions stay `starting`. */
class IdleLauncher implements Launcher {
  readonly kind = "idle";
  async launch(request: { launchId: string }): Promise<LaunchHandle> {
    let exit!: (value: LaunchExit) => void;
    const exited = new Promise<LaunchExit>((resolve) => (exit = resolve));
    return {
      launchId: request.launchId,
      exited,
      stop: async (reason) => exit({ code: 0, signal: null, reason, stderrTail: [] }),
    };
  }
  async stopAll(): Promise<void> {}
}

const A = { authorization: "Bearer key-a" };
const B = { authorization: "Bearer key-b" };

describe("the client API (inject)", () => {
  let app: TetherApp;
  let aliceSession: string;

  beforeEach(async () => {
    const config = loadConfig({ TETHER_API_KEYS: "alice:key-a,bob:key-b", TETHER_LOG_LEVEL: "silent", TETHER_DATA_DIR: "/tmp/tether-unit-unused", TETHER_MAX_REQUEST_BYTES: "1024" });
    app = buildApp(config, { launcher: new IdleLauncher() });
    await app.ready();
    aliceSession = app.tether.registry.create("alice", { chat: "1" }).id;
  });

  afterEach(async () => {
    await app.close();
  });

  it("answers /healthz without a key", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("refuses /v1 calls without a key as missing, with a wrong key as invalid", async () => {
    const missing = await app.inject({ method: "GET", url: "/v1/sessions" });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe(ErrorCodes.AUTH_MISSING);
    const invalid = await app.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: "Bearer nope" } });
    expect(invalid.statusCode).toBe(401);
    expect(invalid.json().error.code).toBe(ErrorCodes.AUTH_INVALID);
    const notBearer = await app.inject({ method: "GET", url: "/v1/sessions", headers: { authorization: "Basic key-a" } });
    expect(notBearer.json().error.code).toBe(ErrorCodes.AUTH_INVALID);
  });

  it("accepts ?token= only on the websocket stream", async () => {
    const res = await app.inject({ method: "GET", url: "/v1/sessions?token=key-a" });
    expect(res.statusCode).toBe(401);
  });

  it("lists only the caller's own sessions", async () => {
    const alice = await app.inject({ method: "GET", url: "/v1/sessions", headers: A });
    expect(alice.json().sessions.map((s: { id: string }) => s.id)).toEqual([aliceSession]);
    expect(alice.json().sessions[0]).toMatchObject({ status: "starting", metadata: { chat: "1" } });
    const bob = await app.inject({ method: "GET", url: "/v1/sessions", headers: B });
    expect(bob.json()).toEqual({ sessions: [] });
  });

  it.each([
    ["GET", ""],
    ["DELETE", ""],
    ["POST", "/interrupt"],
    ["POST", "/restart"],
    ["GET", "/files"],
    ["GET", "/files/a.txt"],
    ["PUT", "/files/a.txt"],
    ["DELETE", "/files/a.txt"],
  ] as const)("answers another tenant's %s /v1/sessions/:id%s with 404", async (method, suffix) => {
    const res = await app.inject({ method, url: `/v1/sessions/${aliceSession}${suffix}`, headers: B });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe(ErrorCodes.SESSION_NOT_FOUND);
  });

  it("answers another tenant's execute with 404", async () => {
    const res = await app.inject({ method: "POST", url: `/v1/sessions/${aliceSession}/execute`, headers: B, payload: { code: "1" } });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe(ErrorCodes.SESSION_NOT_FOUND);
  });

  it("refuses bad bodies with distinct codes", async () => {
    const url = `/v1/sessions/${aliceSession}/execute`;
    const cases = [
      { payload: "{bad", code: ErrorCodes.REQUEST_MALFORMED_JSON, status: 400 },
      { payload: JSON.stringify({}), code: ErrorCodes.REQUEST_INVALID, status: 400 },
      { payload: JSON.stringify({ code: 1 }), code: ErrorCodes.REQUEST_INVALID, status: 400 },
      { payload: JSON.stringify({ code: "1", extra: true }), code: ErrorCodes.REQUEST_INVALID, status: 400 },
      { payload: JSON.stringify({ code: "1", timeoutMs: 0 }), code: ErrorCodes.REQUEST_INVALID, status: 400 },
      { payload: JSON.stringify({ code: "x".repeat(2000) }), code: ErrorCodes.REQUEST_TOO_LARGE, status: 413 },
    ];
    for (const { payload, code, status } of cases) {
      const res = await app.inject({ method: "POST", url, headers: { ...A, "content-type": "application/json" }, payload });
      expect({ status: res.statusCode, code: res.json().error.code }).toEqual({ status, code });
    }
    const text = await app.inject({ method: "POST", url, headers: { ...A, "content-type": "text/plain" }, payload: "print(1)" });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe(ErrorCodes.REQUEST_UNSUPPORTED_MEDIA_TYPE);
  });

  it("refuses file paths that leave the workspace before asking the worker", async () => {
    for (const [path, code] of [
      ["..%2Fetc%2Fpasswd", ErrorCodes.PATH_ESCAPES_WORKSPACE],
      ["%2Fetc%2Fpasswd", ErrorCodes.PATH_ESCAPES_WORKSPACE],
      ["a%2F..%2F..%2Fb", ErrorCodes.PATH_ESCAPES_WORKSPACE],
      ["a//b", ErrorCodes.PATH_INVALID],
      ["a%5Cb", ErrorCodes.PATH_INVALID],
    ] as const) {
      const res = await app.inject({ method: "GET", url: `/v1/sessions/${aliceSession}/files/${path}`, headers: A });
      expect({ path, status: res.statusCode, code: res.json().error.code }).toEqual({ path, status: 400, code });
    }
  });

  it("answers executions on a session that is still starting by queueing them", async () => {
    const session = app.tether.registry.get("alice", aliceSession);
    expect(session.state).toBe("starting");
    const interrupt = await app.inject({ method: "POST", url: `/v1/sessions/${aliceSession}/interrupt`, headers: A });
    expect(interrupt.statusCode).toBe(409);
    expect(interrupt.json().error.code).toBe(ErrorCodes.SESSION_NOT_READY);
  });

  it("deletes a session with 204, after which it is gone", async () => {
    const res = await app.inject({ method: "DELETE", url: `/v1/sessions/${aliceSession}`, headers: A });
    expect(res.statusCode).toBe(204);
    const after = await app.inject({ method: "GET", url: `/v1/sessions/${aliceSession}`, headers: A });
    expect(after.json().error.code).toBe(ErrorCodes.SESSION_NOT_FOUND);
  });

  it("answers unknown routes with ROUTE_NOT_FOUND in the error shape", async () => {
    const res = await app.inject({ method: "GET", url: "/nope" });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: ErrorCodes.ROUTE_NOT_FOUND } });
  });
});

describe("orchestrator shutdown", () => {
  it("ends even when a websocket peer never answers the close handshake", async () => {
    const config = loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", TETHER_DATA_DIR: "/tmp/tether-unit-unused" });
    const app = buildApp(config, { launcher: new IdleLauncher(), shutdownSocketGraceMs: 300 });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const socket = net.connect((app.server.address() as AddressInfo).port, "127.0.0.1");
    try {
      await once(socket, "connect");
      // A websocket on the worker gateway whose peer then stops reading: it never answers the server's close frame.
      socket.write(
        "GET /v1/workers/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
      const [response] = (await once(socket, "data")) as [Buffer];
      expect(response.toString("latin1")).toMatch(/^HTTP\/1\.1 101/);
      socket.pause();
      const startedAt = Date.now();
      await app.close();
      // ws alone would wait 30 s for the close handshake.
      expect(Date.now() - startedAt).toBeLessThan(5000);
    } finally {
      socket.destroy();
    }
  });
});
