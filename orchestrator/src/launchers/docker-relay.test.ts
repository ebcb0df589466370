import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { GatewayRelay, RELAY_SOCKET_NAME } from "./docker-relay.js";
import { demuxLogText } from "./docker-container.js";

const GATEWAY = "/v1/workers/connect";

/** Sends raw bytes over the relay socket and returns everything it answers until it closes. */
function rawExchange(socketPath: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk.toString()));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.write(request);
  });
}

describe("GatewayRelay", () => {
  let dir: string;
  let server: Server;
  let wss: WebSocketServer;
  let target: string;
  /** Requests the orchestrator side saw, as "METHOD path". */
  const seen: string[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tether-relay-test-"));
    seen.length = 0;
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end("plain http");
    });
    wss = new WebSocketServer({ noServer: true });
    server.on("upgrade", (req, socket, head) => {
      seen.push(`UPGRADE ${req.url} host=${req.headers.host}`);
      if (!req.url?.startsWith(GATEWAY)) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => ws.send(`echo ${data.toString()}`)));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as net.AddressInfo;
    target = `ws://127.0.0.1:${address.port}${GATEWAY}`;
  });

  afterEach(async () => {
    wss.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const open = () => GatewayRelay.open({ directory: path.join(dir, "lch_test"), target, logger: pino({ level: "silent" }) });

  it("relays a websocket to the gateway through its unix socket, with the target's Host", async () => {
    const relay = await open();
    try {
      const url = relay.workerUrl(path.join(dir, "lch_test"));
      expect(url).toBe(`ws+unix:${path.join(dir, "lch_test", RELAY_SOCKET_NAME)}:${GATEWAY}`);
      expect((await stat(path.join(dir, "lch_test", RELAY_SOCKET_NAME))).mode & 0o777).toBe(0o666);
      const ws = new WebSocket(url);
      const reply = await new Promise<string>((resolve, reject) => {
        ws.on("open", () => ws.send("hello"));
        ws.on("message", (data: Buffer) => resolve(data.toString()));
        ws.on("error", reject);
      });
      ws.close();
      expect(reply).toBe("echo hello");
      expect(seen).toEqual([`UPGRADE ${GATEWAY} host=${new URL(target).host}`]);
    } finally {
      await relay.close();
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses anything but the gateway upgrade with 403, and forwards none of it", async () => {
    const relay = await open();
    const socketPath = path.join(dir, "lch_test", RELAY_SOCKET_NAME);
    try {
      const refused = [
        "GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n",
        `GET ${GATEWAY} HTTP/1.1\r\nHost: x\r\n\r\n`,
        `POST ${GATEWAY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
        "GET /v1/sessions/x/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        `GET ${GATEWAY}/../sessions HTTP/1.1\r\nUpgrade: websocket\r\n\r\n`,
      ];
      for (const request of refused) expect(await rawExchange(socketPath, request), request).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(seen).toEqual([]);
    } finally {
      await relay.close();
    }
  });

  it("passes back an answer other than 101 and sends nothing after it upstream", async () => {
    // Upgrade without `Connection: Upgrade`: this upstream answers it as a plain GET and keeps the connection
    // alive, so a request pipelined behind it would be served if the relay forwarded it.
    const relay = await open();
    try {
      const answer = await rawExchange(
        path.join(dir, "lch_test", RELAY_SOCKET_NAME),
        `GET ${GATEWAY} HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*plain http$/);
      expect(seen).toEqual([`GET ${GATEWAY}`]);
    } finally {
      await relay.close();
    }
  });
});

describe("GatewayRelay connection limit", () => {
  it("accepts at most 4 connections at once on its socket", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tether-relay-limit-"));
    // Nothing listens on the target: accepted connections just wait for their request head.
    const relay = await GatewayRelay.open({ directory: path.join(dir, "lch_limit"), target: "ws://127.0.0.1:9/v1/workers/connect", logger: pino({ level: "silent" }) });
    const sockets: net.Socket[] = [];
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          new Promise<string>((resolve) => {
            // Staggered, so the first four are accepted before the fifth arrives.
            setTimeout(() => {
              const socket = net.connect(path.join(dir, "lch_limit", RELAY_SOCKET_NAME));
              sockets.push(socket);
              socket.on("error", () => resolve("error"));
              socket.on("close", () => resolve("closed"));
              setTimeout(() => resolve("open"), 300);
            }, i * 30);
          }),
        ),
      );
      expect(outcomes).toEqual(["open", "open", "open", "open", "closed"]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("demuxLogText", () => {
  it("strips the Engine API's stream frames from a non-TTY log", () => {
    const frame = (stream: number, text: string) => {
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([header, Buffer.from(text)]);
    };
    expect(demuxLogText(Buffer.concat([frame(2, "first line\n"), frame(2, "second "), frame(2, "line\n")]))).toBe("first line\nsecond line\n");
    expect(demuxLogText(Buffer.from("unframed text\n"))).toBe("unframed text\n");
  });
});
