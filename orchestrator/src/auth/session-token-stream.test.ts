import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, Launcher } from "../launchers/launcher.js";

/** Workers never dial back: sessions stay `starting`; the stream still says hello and queues executions. */
const idleLauncher: Launcher = {
  kind: "idle",
  launch: async ({ launchId }) => ({ launchId, exited: new Promise<LaunchExit>(() => {}), stop: async () => {} }),
  stopAll: async () => {},
};

type Outcome = { opened: true; first: { type: string; sessionId?: string } } | { opened: false; status: number; code: string | undefined };

describe("the websocket stream with session tokens and origins", () => {
  let app: TetherApp;
  let base: string;
  let mine: string;
  let other: string;
  const sockets: WebSocket[] = [];

  beforeEach(async () => {
    const config = loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", TETHER_CORS_ORIGINS: "https://chat.example.com" });
    app = buildApp(config, { launcher: idleLauncher });
    await app.listen({ host: "127.0.0.1", port: 0 });
    base = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    mine = app.tether.registry.create("alice", {}).id;
    other = app.tether.registry.create("alice", {}).id;
  });

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.terminate();
    await app.close();
  });

  async function mint(sessionId: string): Promise<{ token: string; tokenId: string }> {
    const res = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/tokens`, headers: { authorization: "Bearer key-a" } });
    return res.json();
  }

  /** Opens the stream: the first message if the upgrade is accepted, else the HTTP status and error code. */
  function open(path: string, headers: Record<string, string> = {}): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${base}${path}`, { headers });
      sockets.push(socket);
      socket.on("error", () => {});
      socket.once("message", (data) => resolve({ opened: true, first: JSON.parse(data.toString()) }));
      socket.once("unexpected-response", (_req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ opened: false, status: res.statusCode ?? 0, code: JSON.parse(Buffer.concat(chunks).toString()).error?.code }));
      });
      socket.once("close", () => reject(new Error("closed before a message")));
    });
  }

  it("opens its own session's stream with the token as ?token= and as a Bearer header", async () => {
    const { token } = await mint(mine);
    expect(await open(`/v1/sessions/${mine}/stream?token=${token}`)).toEqual({ opened: true, first: expect.objectContaining({ type: "hello", sessionId: mine }) });
    expect(await open(`/v1/sessions/${mine}/stream`, { authorization: `Bearer ${token}` })).toEqual({ opened: true, first: expect.objectContaining({ type: "hello", sessionId: mine }) });
  });

  it("takes execute frames from a session-token stream", async () => {
    const { token } = await mint(mine);
    const socket = new WebSocket(`${base}/v1/sessions/${mine}/stream?token=${token}`);
    sockets.push(socket);
    const messages: { type: string; requestId?: string | null; state?: string }[] = [];
    const queued = new Promise<void>((resolve) =>
      socket.on("message", (data) => {
        const message = JSON.parse(data.toString());
        messages.push(message);
        if (message.type === "hello") socket.send(JSON.stringify({ type: "execute", requestId: "r1", code: "1" }));
        if (message.type === "status" && message.requestId === "r1") resolve();
      }),
    );
    await queued;
    expect(messages.at(-1)).toMatchObject({ type: "status", requestId: "r1", state: "queued" });
  });

  it("refuses another session's stream (403 AUTH_SCOPE), a revoked token (401) and an unknown one (401)", async () => {
    const { token, tokenId } = await mint(mine);
    expect(await open(`/v1/sessions/${other}/stream?token=${token}`)).toEqual({ opened: false, status: 403, code: ErrorCodes.AUTH_SCOPE });
    expect(await open(`/v1/sessions/${other}/stream`, { authorization: `Bearer ${token}` })).toEqual({ opened: false, status: 403, code: ErrorCodes.AUTH_SCOPE });
    await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens/${tokenId}`, headers: { authorization: "Bearer key-a" } });
    expect(await open(`/v1/sessions/${mine}/stream?token=${token}`)).toEqual({ opened: false, status: 401, code: ErrorCodes.AUTH_REVOKED });
    expect(await open(`/v1/sessions/${mine}/stream?token=tst_unknown`)).toEqual({ opened: false, status: 401, code: ErrorCodes.AUTH_INVALID });
  });

  it("checks the Origin of upgrades against TETHER_CORS_ORIGINS; clients without an Origin pass", async () => {
    const { token } = await mint(mine);
    const url = `/v1/sessions/${mine}/stream?token=${token}`;
    expect(await open(url, { origin: "https://chat.example.com" })).toMatchObject({ opened: true });
    expect(await open(url, { origin: "https://evil.example.net" })).toEqual({ opened: false, status: 403, code: ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED });
    expect(await open(url, { origin: "null" })).toEqual({ opened: false, status: 403, code: ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED });
    expect(await open(url)).toMatchObject({ opened: true });
    // A page served by the orchestrator's own host is same-origin.
    expect(await open(url, { origin: base.replace("ws:", "http:") })).toMatchObject({ opened: true });
    // The origin is checked before the credential: a foreign page learns nothing about tokens.
    expect(await open(`/v1/sessions/${mine}/stream?token=tst_wrong`, { origin: "https://evil.example.net" })).toEqual({ opened: false, status: 403, code: ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED });
  });
});
