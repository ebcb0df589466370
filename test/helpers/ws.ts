import WebSocket from "ws";
import type { DoneEvent, ServerMessage } from "@tether/shared";

/** Default wait for one websocket event. */
export const EVENT_TIMEOUT_MS = 30_000;

type Predicate<T> = (message: T) => boolean;

interface Waiter<T> {
  predicate: Predicate<T>;
  resolve: (message: T) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A websocket peer that queues every JSON message it receives. `nextMessage`
 * takes the first queued (or future) message matching a predicate, leaving
 * the others queued, so tests wait for events rather than for time.
 */
export class JsonSocket<T extends { type: string } = ServerMessage> {
  private readonly queue: T[] = [];
  private readonly waiters: Waiter<T>[] = [];
  private closeInfo: { code: number; reason: string } | undefined;
  private readonly closeWaiters: ((info: { code: number; reason: string }) => void)[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on("message", (raw, isBinary) => {
      if (isBinary) return;
      let message: T;
      try {
        message = JSON.parse(raw.toString()) as T;
      } catch {
        return;
      }
      const index = this.waiters.findIndex((w) => w.predicate(message));
      if (index >= 0) {
        const [waiter] = this.waiters.splice(index, 1);
        clearTimeout(waiter!.timer);
        waiter!.resolve(message);
      } else {
        this.queue.push(message);
      }
    });
    socket.on("close", (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      for (const waiter of this.waiters.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`The websocket closed (code ${code} ${reason.toString()}) before the awaited message arrived.`));
      }
      for (const resolve of this.closeWaiters.splice(0)) resolve(this.closeInfo);
    });
  }

  /** Connects and resolves once the socket is open. */
  static async connect<M extends { type: string } = ServerMessage>(url: string, headers: Record<string, string> = {}): Promise<JsonSocket<M>> {
    const socket = new WebSocket(url, { headers, maxPayload: 64 * 1024 * 1024 });
    const peer = new JsonSocket<M>(socket); // attach listeners before any frame can arrive
    await waitForOpen(socket);
    return peer;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Takes the first message matching `predicate`, waiting up to `timeoutMs` for it. */
  nextMessage(predicate: Predicate<T> = () => true, timeoutMs = EVENT_TIMEOUT_MS): Promise<T> {
    const index = this.queue.findIndex(predicate);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]!);
    if (this.closeInfo) {
      return Promise.reject(new Error(`The websocket is closed (code ${this.closeInfo.code}); the awaited message will never come.`));
    }
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          const seen = this.queue.map((m) => JSON.stringify(m).slice(0, 200)).join("\n  ");
          reject(new Error(`No matching websocket message within ${timeoutMs} ms. Unconsumed messages:\n  ${seen || "(none)"}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Messages received and not yet taken. */
  pending(): readonly T[] {
    return this.queue;
  }

  /** Resolves with the close code once the peer (or we) closed the socket. */
  closed(): Promise<{ code: number; reason: string }> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Closes and waits for the close handshake to finish. */
  async close(): Promise<void> {
    if (this.closeInfo) return;
    const done = this.closed();
    this.socket.close();
    await done;
  }
}

/** A client connection to `/v1/sessions/:id/stream`. */
export class StreamClient extends JsonSocket<ServerMessage> {
  /** Connects with a Bearer header (or `query: true` for `?token=`) and consumes the hello. */
  static async open(baseUrl: string, sessionId: string, key: string, options: { query?: boolean } = {}): Promise<StreamClient> {
    const url = streamUrl(baseUrl, sessionId, options.query ? key : undefined);
    const socket = new WebSocket(url, { headers: options.query ? {} : { authorization: `Bearer ${key}` }, maxPayload: 64 * 1024 * 1024 });
    const client = new StreamClient(socket);
    await waitForOpen(socket);
    return client;
  }

  /** Connects to a full stream URL (e.g. with `?after=`) with a Bearer header; the hello stays queued. */
  static async openUrl(url: string, key: string): Promise<StreamClient> {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${key}` }, maxPayload: 64 * 1024 * 1024 });
    const client = new StreamClient(socket);
    await waitForOpen(socket);
    return client;
  }

  /** Sends an execute and returns every message of that request, ending with its done. */
  async run(requestId: string, code: string, timeoutMs?: number): Promise<ExecutionTrace> {
    this.send({ type: "execute", requestId, code, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    return this.collectUntilDone(requestId);
  }

  /** Takes every message of `requestId` up to and including its done. */
  async collectUntilDone(requestId: string, timeoutMs = 60_000): Promise<ExecutionTrace> {
    const deadline = Date.now() + timeoutMs;
    const events: ServerMessage[] = [];
    for (;;) {
      const message = await this.nextMessage((m) => m.requestId === requestId, Math.max(1, deadline - Date.now()));
      events.push(message);
      if (message.type === "done") return new ExecutionTrace(events, message);
    }
  }
}

/** The messages of one execution, in arrival order. */
export class ExecutionTrace {
  constructor(
    readonly events: ServerMessage[],
    readonly done: DoneEvent,
  ) {}

  ofType<K extends ServerMessage["type"]>(type: K): Extract<ServerMessage, { type: K }>[] {
    return this.events.filter((e): e is Extract<ServerMessage, { type: K }> => e.type === type);
  }

  /** Concatenated text of one stream. */
  text(name: "stdout" | "stderr"): string {
    return this.ofType("stream")
      .filter((e) => e.name === name)
      .map((e) => e.text)
      .join("");
  }
}

function waitForOpen(socket: WebSocket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
    socket.once("unexpected-response", (_req, res) => {
      socket.terminate();
      reject(new Error(`The websocket upgrade was refused with HTTP ${res.statusCode}.`));
    });
  });
}

export function streamUrl(baseUrl: string, sessionId: string, token?: string): string {
  const url = new URL(`/v1/sessions/${sessionId}/stream`, baseUrl.replace(/^http/, "ws"));
  if (token !== undefined) url.searchParams.set("token", token);
  return url.toString();
}

/** How a websocket upgrade ended when the server refused it. */
export type UpgradeOutcome =
  | { kind: "http"; status: number; code: string | undefined }
  | { kind: "closed"; closeCode: number; code: string | undefined; sawHello: boolean };

/**
 * Opens a websocket that the server is expected to refuse, and reports how:
 * an HTTP error answer to the upgrade (with its error code), or an accepted
 * socket that the server closes (with the code of any error frame it sent).
 */
export function attemptUpgrade(url: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<UpgradeOutcome> {
  return new Promise<UpgradeOutcome>((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    let code: string | undefined;
    let sawHello = false;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`The server neither refused nor closed the websocket within ${timeoutMs} ms (hello seen: ${sawHello}).`));
    }, timeoutMs);
    socket.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        let bodyCode: string | undefined;
        try {
          bodyCode = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: { code?: string } }).error?.code;
        } catch {
          bodyCode = undefined;
        }
        resolve({ kind: "http", status: res.statusCode ?? 0, code: bodyCode });
        socket.terminate();
      });
    });
    socket.on("message", (raw) => {
      try {
        const message = JSON.parse(raw.toString()) as { type?: string; code?: string; error?: { code?: string } };
        if (message.type === "hello") sawHello = true;
        code ??= message.code ?? message.error?.code;
      } catch {
        // not JSON: ignore
      }
    });
    socket.on("close", (closeCode) => {
      clearTimeout(timer);
      resolve({ kind: "closed", closeCode, code, sawHello });
    });
    socket.on("error", () => {
      // unexpected-response or close reports the outcome
    });
  });
}
