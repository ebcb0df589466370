import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { setMaxPayload } from "./ws-limits.js";

describe("a per-socket frame limit", () => {
  let server: WebSocketServer | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it("refuses a frame over the socket's own limit from its header (close 1009), and accepts one below", async () => {
    server = await new Promise<WebSocketServer>((resolve) => {
      const created: WebSocketServer = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 64 * 1024 * 1024 }, () => resolve(created));
    });
    const received: number[] = [];
    server.once("connection", (socket) => {
      setMaxPayload(socket, 1000);
      socket.on("error", () => undefined); // ws reports the oversized frame as an error before it closes
      socket.on("message", (data: Buffer) => received.push(data.byteLength));
    });
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    // The server answers an oversized frame with a close frame saying 1009 (message too big).
    const closed = new Promise<number>((resolve) => client.once("close", (code) => resolve(code)));
    await new Promise((resolve) => client.once("open", resolve));
    client.send("x".repeat(999));
    client.send("x".repeat(5 * 1024 * 1024));
    expect(await closed).toBe(1009);
    expect(received).toEqual([999]);
  });
});
