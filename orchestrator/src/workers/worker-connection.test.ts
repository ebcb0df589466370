import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { encodeSequenced, splitSequenced, type OrchestratorMessage, type WorkerMessage } from "@tether/shared";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import { ObservedArray, closedSocket } from "../../../test/helpers/signals.js";
import { WorkerConnection, type WorkerSessionMessage } from "./worker-connection.js";

const HEARTBEAT_MS = 100;
const logger = pino({ level: "silent" });

/** The worker end of one socket: sequenced frames out, what the orchestrator sent in (seq stripped, recorded). */
class FakeWorkerSocket {
  readonly received: { seq: number | undefined; message: OrchestratorMessage }[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer) => {
      const split = splitSequenced(data);
      this.received.push({ seq: split?.seq, message: JSON.parse((split?.body ?? data).toString()) as OrchestratorMessage });
      this.waiters.splice(0).forEach((wake) => wake());
    });
  }

  sendSequenced(seq: number, message: WorkerMessage): void {
    this.ws.send(encodeSequenced(seq, JSON.stringify(message)));
  }

  async next(predicate: (message: OrchestratorMessage) => boolean): Promise<{ seq: number | undefined; message: OrchestratorMessage }> {
    for (;;) {
      const index = this.received.findIndex((entry) => predicate(entry.message));
      if (index >= 0) return this.received.splice(index, 1)[0]!;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

const stream = (requestId: string, text: string): WorkerMessage => ({ type: "stream", requestId, name: "stdout", text });

describe("a resumable worker connection", () => {
  let server: WebSocketServer | undefined;
  const sockets: WebSocket[] = [];
  afterEach(async () => {
    sockets.forEach((socket) => socket.terminate());
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  /** A server socket and its client end, like the gateway hands over after a handshake. */
  async function pair(): Promise<{ serverSide: WebSocket; worker: FakeWorkerSocket }> {
    server ??= await new Promise<WebSocketServer>((resolve) => {
      const created: WebSocketServer = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => resolve(created));
    });
    const accepted = new Promise<WebSocket>((resolve) => server!.once("connection", resolve));
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    sockets.push(client);
    const worker = new FakeWorkerSocket(client);
    await new Promise((resolve) => client.once("open", resolve));
    const serverSide = await accepted;
    sockets.push(serverSide);
    return { serverSide, worker };
  }

  async function connect() {
    const first = await pair();
    const connection = new WorkerConnection(first.serverSide, "wrk_1", "ses_1", HEARTBEAT_MS, logger, { resumable: true });
    const delivered = new ObservedArray<WorkerSessionMessage>();
    const raws: string[] = [];
    const closes = new ObservedArray<{ code: ErrorCode; reason: string }>();
    connection.setHandler({
      onMessage: (message, raw) => {
        delivered.push(message);
        raws.push(Buffer.from(raw).toString());
      },
      onClose: (code, reason) => closes.push({ code, reason }),
    });
    const token = connection.issueResumeToken();
    return { connection, worker: first.worker, serverSide: first.serverSide, delivered, raws, token, closes, closed: () => closes[0] };
  }

  it("delivers each worker seq once, relays the message without its seq, and acks cumulatively", async () => {
    const { worker, delivered, raws } = await connect();
    worker.sendSequenced(1, stream("r", "a"));
    worker.sendSequenced(2, stream("r", "b"));
    worker.sendSequenced(2, stream("r", "b"));
    worker.sendSequenced(1, stream("r", "a"));
    worker.sendSequenced(3, stream("r", "c"));
    const ack = await worker.next((message) => message.type === "ack");
    expect(ack).toEqual({ seq: undefined, message: { type: "ack", seq: 3 } });
    expect(delivered.map((message) => (message.type === "stream" ? message.text : message.type))).toEqual(["a", "b", "c"]);
    expect(raws[0]).toBe(JSON.stringify(stream("r", "a")));
  });

  it("holds a dropped link, queues what is sent meanwhile, and on resume retransmits exactly what each side missed", async () => {
    const { connection, worker, serverSide, delivered, token } = await connect();
    worker.sendSequenced(1, stream("r", "one"));
    expect((await worker.next((message) => message.type === "ack")).message).toEqual({ type: "ack", seq: 1 });
    connection.send({ type: "input_reply", requestId: "r", value: "before" });
    await worker.next((message) => message.type === "input_reply");

    worker.ws.terminate();
    await closedSocket(serverSide);
    expect(connection.linkState).toBe("held");
    expect(connection.state).toBe("open");
    expect(connection.send({ type: "input_reply", requestId: "r", value: "during" })).toBe(true);

    const second = await pair();
    // The worker delivered orchestrator seq 1; it re-sends its seq 1 (already delivered) and 2 (new).
    expect(connection.resumeLink(second.serverSide, "wrong", 1)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_RESUME_REFUSED });
    expect(connection.resumeLink(second.serverSide, token, 1)).toEqual({ ok: true });
    const resumed = await second.worker.next((message) => message.type === "resumed");
    expect(resumed.message).toMatchObject({ type: "resumed", lastSeqReceived: 1, resumeToken: expect.any(String) });
    expect(resumed.message.type === "resumed" && resumed.message.resumeToken).not.toBe(token);
    const replayed = await second.worker.next((message) => message.type === "input_reply");
    expect(replayed).toEqual({ seq: 2, message: { type: "input_reply", requestId: "r", value: "during" } });
    second.worker.sendSequenced(1, stream("r", "one"));
    second.worker.sendSequenced(2, stream("r", "two"));
    await delivered.until((d) => d.length === 2);
    expect(delivered.map((message) => (message.type === "stream" ? message.text : ""))).toEqual(["one", "two"]);
    // The used token is spent: it cannot resume again.
    const third = await pair();
    expect(connection.resumeLink(third.serverSide, token, 2)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_RESUME_REFUSED });
  });

  it("refuses a resume that claims frames never sent", async () => {
    const { connection, worker, serverSide, token } = await connect();
    worker.ws.terminate();
    await closedSocket(serverSide);
    expect(connection.linkState).toBe("held");
    const second = await pair();
    expect(connection.resumeLink(second.serverSide, token, 5)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_RESUME_REFUSED });
  });

  it("declares the worker lost once it stays away past 3 heartbeat intervals, and refuses it afterwards", async () => {
    const { connection, worker, token, closed, closes } = await connect();
    const pending = connection.call("files_list", {}, 0);
    pending.catch(() => undefined);
    const droppedAt = Date.now();
    worker.ws.terminate();
    await closes.until((c) => c.length > 0);
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(3 * HEARTBEAT_MS - 10);
    expect(closed()).toMatchObject({ code: ErrorCodes.WORKER_LOST, reason: expect.stringContaining("did not reconnect") });
    expect(connection.state).toBe("closed");
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.WORKER_LOST });
    const late = await pair();
    expect(connection.resumeLink(late.serverSide, token, 0)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_RESUME_REFUSED });
  });

  it("does not hold a worker it told to shut down whose process then drops the socket (1006), and says why", async () => {
    const { connection, worker, closes } = await connect();
    const droppedAt = Date.now();
    connection.shuttingDown("deleted by the client");
    worker.ws.terminate();
    await closes.until((c) => c.length > 0);
    // At once, not after the 3-interval hold a dropped link gets.
    expect(Date.now() - droppedAt).toBeLessThan(3 * HEARTBEAT_MS);
    expect(closes[0]).toMatchObject({ code: ErrorCodes.WORKER_LOST, reason: expect.stringContaining("deleted by the client") });
    expect(connection.state).toBe("closed");
  });

  it("does not hold a worker that closed its socket on purpose (shutdown)", async () => {
    const { connection, worker, closes } = await connect();
    worker.ws.close(4000, "stopping");
    await closes.until((c) => c.length > 0);
    expect(connection.state).toBe("closed");
  });
});
