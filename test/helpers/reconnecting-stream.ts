import WebSocket from "ws";
import type { ServerMessage } from "@tether/shared";
import { ObservedArray } from "./signals.js";
import { streamUrl } from "./ws.js";

export type Numbered = ServerMessage & { seq?: number };

/**
 * A client of a session's stream that does what the docs tell clients to:
 * when its connection ends (a replica died, handed the session over, or the
 * balancer cut it), it reconnects through the same URL with `?after=<the
 * last seq it saw>`, retrying while the cluster fails over. It keeps every
 * numbered message once, in order, and how long each gap lasted.
 */
export class ReconnectingStream {
  readonly messages = new ObservedArray<Numbered>();
  /** Per reconnect: ms from the drop to the first message after it (failover as a client sees it). */
  readonly gapsMs: number[] = [];
  /** Upgrade attempts refused while reconnecting (503s during a failover). */
  refusals = 0;
  private socket: WebSocket | undefined;
  private lastSeq = 0;
  private droppedAt: number | undefined;
  private closed = false;

  private constructor(
    private readonly baseUrl: string,
    private readonly sessionId: string,
    private readonly key: string,
  ) {}

  static async open(baseUrl: string, sessionId: string, key: string): Promise<ReconnectingStream> {
    const stream = new ReconnectingStream(baseUrl, sessionId, key);
    await stream.connect();
    return stream;
  }

  send(message: unknown): void {
    this.socket?.send(JSON.stringify(message));
  }

  /** Every message of `requestId`, once its done arrived. */
  async untilDone(requestId: string, timeoutMs = 120_000): Promise<Numbered[]> {
    await this.messages.until((all) => all.some((m) => m.type === "done" && m.requestId === requestId), timeoutMs, `the done of ${requestId}`);
    return this.messages.filter((m) => m.requestId === requestId);
  }

  /** Drops the connection without a close handshake (the client's own network failing). */
  cut(): void {
    this.socket?.terminate();
  }

  close(): void {
    this.closed = true;
    this.socket?.terminate();
  }

  private connect(): Promise<void> {
    const url = `${streamUrl(this.baseUrl, this.sessionId)}${this.lastSeq > 0 ? `?after=${this.lastSeq}` : ""}`;
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.key}` }, maxPayload: 64 * 1024 * 1024 });
    this.socket = socket;
    socket.on("message", (raw) => {
      const message = JSON.parse(raw.toString()) as Numbered;
      if (message.type === "hello" || message.seq === undefined) return;
      if (message.seq <= this.lastSeq) throw new Error(`seq ${message.seq} arrived again after ${this.lastSeq}`);
      this.lastSeq = message.seq;
      if (this.droppedAt !== undefined) {
        this.gapsMs.push(Date.now() - this.droppedAt);
        this.droppedAt = undefined;
      }
      this.messages.push(message);
    });
    let opened = false;
    return new Promise<void>((resolve, reject) => {
      socket.once("open", () => {
        opened = true;
        resolve();
      });
      socket.once("unexpected-response", (_request, response) => {
        socket.terminate();
        this.refusals += 1;
        reject(new Error(`refused with HTTP ${response.statusCode}`));
      });
      socket.once("error", reject);
      socket.once("close", () => {
        // A refused attempt is the reconnect loop's business; only an open stream that ends starts one.
        if (!opened || this.closed || this.socket !== socket) return;
        this.droppedAt ??= Date.now();
        void this.reconnect();
      });
    });
  }

  private async reconnect(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!this.closed && Date.now() < deadline) {
      try {
        await this.connect();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}
