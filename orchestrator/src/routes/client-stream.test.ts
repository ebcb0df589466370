import type { AddressInfo } from "node:net";
import type { TetherApp } from "../app/build-app.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { PROTOCOL_VERSION, type ServerMessage } from "@tether/shared";
import { buildApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, Launcher } from "../launchers/launcher.js";

/** Workers never dial back: the session stays `starting`, which is all these frame checks need. */
const idleLauncher: Launcher = {
  kind: "idle",
  launch: async ({ launchId }) => ({ launchId, exited: new Promise<LaunchExit>(() => {}), stop: async () => {} }),
  stopAll: async () => {},
};

class Client {
  private readonly messages: ServerMessage[] = [];
  private readonly waiters: (() => void)[] = [];
  constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      this.messages.push(JSON.parse(data.toString()) as ServerMessage);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }
  async next(): Promise<ServerMessage> {
    while (this.messages.length === 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.messages.shift()!;
  }
}

describe("the client websocket stream", () => {
  let app: TetherApp;
  let base: string;
  let sessionId: string;
  const open: WebSocket[] = [];

  beforeEach(async () => {
    const config = loadConfig({ TETHER_API_KEYS: "alice:key-a,bob:key-b", TETHER_LOG_LEVEL: "silent", TETHER_MAX_CLIENT_FRAME_BYTES: "1024" });
    app = buildApp(config, { launcher: idleLauncher });
    await app.listen({ host: "127.0.0.1", port: 0 });
    base = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    sessionId = app.tether.registry.create("alice", {}).id;
  });

  afterEach(async () => {
    for (const socket of open.splice(0)) socket.terminate();
    await app.close();
  });

  async function connect(url: string, headers: Record<string, string> = { authorization: "Bearer key-a" }): Promise<Client> {
    const socket = new WebSocket(url, { headers });
    open.push(socket);
    const client = new Client(socket);
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    return client;
  }

  function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers });
      socket.on("error", () => {});
      socket.once("unexpected-response", (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      socket.once("open", () => reject(new Error("upgrade accepted")));
    });
  }

  it("sends hello first, and accepts the key as ?token=", async () => {
    const client = await connect(`${base}/v1/sessions/${sessionId}/stream?token=key-a`, {});
    expect(await client.next()).toMatchObject({ type: "hello", requestId: null, sessionId, protocolVersion: PROTOCOL_VERSION });
  });

  it("refuses the upgrade without a key (401) and for another tenant's session (404)", async () => {
    expect(await upgradeStatus(`${base}/v1/sessions/${sessionId}/stream`, {})).toBe(401);
    expect(await upgradeStatus(`${base}/v1/sessions/${sessionId}/stream`, { authorization: "Bearer key-b" })).toBe(404);
    expect(await upgradeStatus(`${base}/v1/sessions/ses_nope/stream`, { authorization: "Bearer key-a" })).toBe(404);
  });

  it("answers bad frames with protocol_error and keeps the connection and the session working", async () => {
    const client = await connect(`${base}/v1/sessions/${sessionId}/stream`);
    await client.next();
    const frames: [string | Buffer, string, string | null][] = [
      ["{not json", ErrorCodes.PROTOCOL_MALFORMED_JSON, null],
      [JSON.stringify({ type: "launch_missiles", requestId: "r0" }), ErrorCodes.PROTOCOL_UNKNOWN_TYPE, "r0"],
      [JSON.stringify({ type: "execute", requestId: "r1" }), ErrorCodes.PROTOCOL_INVALID_MESSAGE, "r1"],
      [JSON.stringify({ type: "execute", requestId: "r2", code: "x".repeat(2000) }), ErrorCodes.PROTOCOL_FRAME_TOO_LARGE, null],
      [Buffer.from([1, 2, 3]), ErrorCodes.PROTOCOL_BINARY_UNSUPPORTED, null],
      [JSON.stringify({ type: "input_reply", requestId: "r9", value: "x" }), ErrorCodes.EXEC_UNKNOWN_REQUEST, "r9"],
    ];
    for (const [frame, code, requestId] of frames) {
      client.socket.send(frame, { binary: Buffer.isBuffer(frame) });
      expect(await client.next()).toMatchObject({ type: "protocol_error", code, requestId });
    }
    // Still open, and an execution is accepted (queued: the session is starting).
    client.socket.send(JSON.stringify({ type: "execute", requestId: "ok1", code: "1" }));
    expect(await client.next()).toMatchObject({ type: "status", requestId: "ok1", state: "queued" });
    client.socket.send(JSON.stringify({ type: "execute", requestId: "ok1", code: "1" }));
    expect(await client.next()).toMatchObject({ type: "protocol_error", requestId: "ok1", code: ErrorCodes.EXEC_DUPLICATE_REQUEST_ID });
    client.socket.send(JSON.stringify({ type: "input_reply", requestId: "ok1", value: "x" }));
    expect(await client.next()).toMatchObject({ type: "protocol_error", requestId: "ok1", code: ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT });
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    expect(app.tether.registry.get("alice", sessionId).state).toBe("starting");
  });

  it("ends queued executions with done 'cancelled' and closes the stream when the session is deleted", async () => {
    const client = await connect(`${base}/v1/sessions/${sessionId}/stream`);
    await client.next();
    client.socket.send(JSON.stringify({ type: "execute", requestId: "q1", code: "1" }));
    await client.next();
    const closed = new Promise<number>((resolve) => client.socket.once("close", (code) => resolve(code)));
    await app.tether.registry.get("alice", sessionId).stop("test");
    expect(await client.next()).toMatchObject({ type: "done", requestId: "q1", status: "cancelled" });
    expect(await closed).toBe(1000);
  });
});
