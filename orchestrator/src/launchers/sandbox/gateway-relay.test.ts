import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { GatewayRelay, checkRequestHead } from "./gateway-relay.js";

const UPGRADE = "GET /v1/workers/connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13";

describe("checkRequestHead", () => {
  it("accepts the gateway's websocket upgrade only", () => {
    expect(checkRequestHead(UPGRADE)).toMatchObject({ ok: true });
    expect(checkRequestHead(UPGRADE.replace("/v1/workers/connect", "/v1/workers/connect?x=1"))).toMatchObject({ ok: true });
  });

  it("refuses other paths, methods, plain requests, bodies and malformed heads", () => {
    const refused = [
      UPGRADE.replace("/v1/workers/connect", "/v1/sessions"),
      UPGRADE.replace("/v1/workers/connect", "/v1/workers/connect/../../v1/sessions"),
      UPGRADE.replace("/v1/workers/connect", "/V1/workers/connect"),
      UPGRADE.replace("GET", "POST"),
      UPGRADE.replace("HTTP/1.1", "HTTP/1.0"),
      UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"),
      "GET /v1/workers/connect HTTP/1.1\r\nHost: x",
      `${UPGRADE}\r\nContent-Length: 5`,
      `${UPGRADE}\r\nTransfer-Encoding: chunked`,
      `${UPGRADE}\r\nX-Evil\nGET /v1/sessions HTTP/1.1`,
      `${UPGRADE}\r\nno colon here`,
    ];
    for (const head of refused) expect(checkRequestHead(head), head).toMatchObject({ ok: false });
  });
});

describe("GatewayRelay", () => {
  let dir: string;
  let server: http.Server;
  let wss: WebSocketServer;
  let relay: GatewayRelay;
  let seenPaths: string[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tether-relay-"));
    seenPaths = [];
    server = http.createServer((req, res) => {
      seenPaths.push(`${req.method} ${req.url}`);
      res.writeHead(req.url === "/v1/sessions" ? 200 : 400, { "content-type": "text/plain" }).end("plain http");
    });
    wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req, socket, head) => {
      seenPaths.push(`UPGRADE ${req.url} host=${req.headers.host}`);
      if (req.url?.startsWith("/prefix/v1/workers/connect")) wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => ws.send(`echo ${data.toString()}`)));
      else socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    relay = await GatewayRelay.start({ socketPath: join(dir, "gateway.sock"), upstreamUrl: `ws://127.0.0.1:${port}/prefix/v1/workers/connect`, logger: pino({ level: "silent" }) });
  });

  afterEach(async () => {
    await relay.close();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  /** Sends raw bytes through the socket; resolves with everything it answered before closing. */
  function raw(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(join(dir, "gateway.sock"));
      let answer = "";
      socket.on("data", (chunk) => (answer += chunk.toString("latin1")));
      socket.on("error", reject);
      socket.on("close", () => resolve(answer));
      socket.write(request);
    });
  }

  it("relays a websocket to the gateway's real path and Host, both ways (ws+unix, as the worker dials)", async () => {
    const ws = new WebSocket(`ws+unix://${join(dir, "gateway.sock")}:/v1/workers/connect`);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const reply = new Promise<string>((resolve) => ws.once("message", (data: Buffer) => resolve(data.toString())));
    ws.send("hello");
    expect(await reply).toBe("echo hello");
    ws.close();
    expect(seenPaths).toEqual([`UPGRADE /prefix/v1/workers/connect host=127.0.0.1:${(server.address() as net.AddressInfo).port}`]);
  });

  it("answers 403 to any other request and never forwards it", async () => {
    expect(await raw("GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n")).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(await raw("GET /v1/workers/connect HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/^HTTP\/1\.1 403 /);
    expect(seenPaths).toEqual([]);
  });

  it("passes a refused upgrade's answer on and closes: a second request on the connection goes nowhere", async () => {
    await relay.close();
    const port = (server.address() as net.AddressInfo).port;
    relay = await GatewayRelay.start({ socketPath: join(dir, "gateway.sock"), upstreamUrl: `ws://127.0.0.1:${port}/elsewhere`, logger: pino({ level: "silent" }) });
    const answer = await raw(`${UPGRADE}\r\n\r\nGET /v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 404 Not Found/);
    expect(answer).not.toContain("plain http");
    expect(seenPaths).toEqual([`UPGRADE /elsewhere host=127.0.0.1:${port}`]);
  });

  it("refuses a request head that never ends within 16 KiB", async () => {
    expect(await raw(`GET /v1/workers/connect HTTP/1.1\r\nX: ${"a".repeat(20_000)}`)).toMatch(/^HTTP\/1\.1 431 /);
  });
});
