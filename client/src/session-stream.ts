import { errorMessage, isRecord, stringField, type ClientMessage } from "@tether/shared";
import { openSocket as defaultOpenSocket } from "#websocket";
import { backoffDelayMs } from "./backoff.js";
import type { ResolvedConfig } from "./config.js";
import { Emitter } from "./emitter.js";
import { Features, speaksSupportedProtocol, supports } from "./features.js";
import { ClientErrorCodes, ConnectionError, EventsExpiredError, NotFoundError, ProtocolError, SessionStartError, TetherError } from "./errors.js";
import type { HttpClient } from "./http.js";
import { decodeServerFrame, type NumberedMessage, type ServerHello } from "./stream-messages.js";
import type { OpenSocket, SocketHandle } from "./socket.js";
import { errorFromResponse, isRetryable, transportError } from "./transport-errors.js";

/** Where the stream is. `reconnecting` waits `delayMs` before the next attempt. */
export type StreamState =
  | { kind: "idle" }
  | { kind: "connecting"; attempt: number }
  | { kind: "open" }
  | { kind: "reconnecting"; attempt: number; delayMs: number; error: TetherError }
  | { kind: "closed"; error: TetherError | undefined };

export interface StreamEvents {
  /** A connection said hello (first one or a reconnect); replayed messages follow. */
  hello: ServerHello;
  /** Each server message once, in order: replayed ones are not repeated, seen ones are dropped. */
  message: NumberedMessage;
  /** Everything up to the server's position at hello has been delivered; `generation` counts connections. */
  caughtUp: { generation: number };
  /** A reconnect asked for messages the server no longer keeps: what came meanwhile is lost; the stream goes on live. */
  expired: EventsExpiredError;
  state: StreamState;
}

export interface StreamOptions {
  sessionId: string;
  config: ResolvedConfig;
  http: HttpClient;
  /** Start with `?after=<seq>`: replay what came after it (a page reloaded mid-run). */
  afterSeq?: number | undefined;
  openSocket?: OpenSocket;
}

/**
 * One session's websocket, kept open: reconnects with jittered, capped backoff
 * and resumes with `?after=<last seq seen>`, so every message is delivered once
 * and none is skipped. A failed upgrade is diagnosed with a plain GET of the
 * same URL (browsers hide the upgrade's HTTP status): 401/403/404 end the
 * stream, 410 is `expired`, anything else is retried.
 */
export class SessionStream {
  readonly events = new Emitter<StreamEvents>();
  private state: StreamState = { kind: "idle" };
  private socket: SocketHandle | undefined;
  private socketId = 0;
  private lastSeq: number | undefined;
  /** The server's last seq at hello: caught up once a message at least this far arrived. */
  private catchUpTo = 0;
  private caughtUp = false;
  private generation = 0;
  private attempt = 0;
  private failingSince: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private waiters: { resolve: () => void; reject: (error: TetherError) => void }[] = [];
  private readonly openSocket: OpenSocket;

  constructor(private readonly options: StreamOptions) {
    this.lastSeq = options.afterSeq;
    this.openSocket = options.openSocket ?? defaultOpenSocket;
  }

  /** The seq of the last message delivered (undefined before the first hello). */
  get seq(): number | undefined {
    return this.lastSeq;
  }

  get current(): StreamState {
    return this.state;
  }

  /** Connects if needed; resolves once connected and caught up; rejects when the stream is closed for good. */
  ready(): Promise<void> {
    if (this.state.kind === "closed") return Promise.reject(this.state.error ?? closedError());
    if (this.state.kind === "open" && this.caughtUp) return Promise.resolve();
    const waiting = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this.state.kind === "idle") this.connect();
    return waiting;
  }

  /** Sends on the open connection; false when there is none (the caller resends after the next catch-up). */
  send(message: ClientMessage): boolean {
    if (this.state.kind !== "open" || !this.socket) return false;
    try {
      this.socket.send(JSON.stringify(message));
      return true;
    } catch {
      // A socket already closing: its close event follows, and the caller resends after the next catch-up.
      return false;
    }
  }

  /** Closes for good; pending `ready()` calls reject with `error` (default: CLOSED). */
  close(error?: TetherError): void {
    if (this.state.kind === "closed") return;
    clearTimeout(this.timer);
    this.socketId++;
    this.socket?.close(1000, "closed by the client");
    this.socket = undefined;
    this.setState({ kind: "closed", error });
    for (const waiter of this.waiters.splice(0)) waiter.reject(error ?? closedError());
  }

  private connect(): void {
    const id = ++this.socketId;
    this.caughtUp = false;
    let helloSeen = false;
    const after = this.lastSeq;
    this.setState({ kind: "connecting", attempt: this.attempt });
    const current = () => id === this.socketId && this.state.kind !== "closed";
    this.openSocket(this.url(after), this.options.config.credential, {
      open: () => undefined,
      message: (text) => {
        if (!current()) return;
        if (!helloSeen) helloSeen = this.onFirstFrame(text, after);
        else this.onFrame(text);
      },
      close: (code, reason) => {
        if (current()) void this.onSocketClosed(code, reason, helloSeen, after);
      },
    }).then(
      (handle) => {
        if (current()) this.socket = handle;
        else handle.close(1000, "superseded");
      },
      (error: unknown) => {
        if (current()) void this.onSocketClosed(1006, errorMessage(error), false, after);
      },
    );
  }

  /** The first frame must be hello; returns whether it was. */
  private onFirstFrame(text: string, after: number | undefined): boolean {
    const decoded = decodeServerFrame(text);
    if (!decoded.ok || decoded.value.message.type !== "hello") {
      this.close(new ProtocolError({ code: ClientErrorCodes.BAD_RESPONSE, message: "The stream's first frame was not a hello.", hint: "Is baseUrl a Tether orchestrator?" }));
      return false;
    }
    const hello = decoded.value.message;
    if (!speaksSupportedProtocol(hello)) {
      this.close(new ProtocolError({ code: ClientErrorCodes.FEATURE_UNSUPPORTED, message: `The orchestrator speaks protocol ${hello.protocolVersion}; this SDK speaks 1.x.`, hint: "Use an SDK release made for that orchestrator." }));
      return false;
    }
    // Feature gate: a server without replay cannot fill a gap; what was missed is reported like an expired log.
    if (after !== undefined && !supports(hello, "streamReplay")) {
      this.events.emit("expired", expiredError(`This orchestrator cannot replay missed messages (stream replay came with protocol ${Features.streamReplay.since}; it speaks ${hello.protocolVersion}).`));
    }
    this.lastSeq ??= hello.lastSeq ?? 0;
    this.catchUpTo = hello.lastSeq ?? 0;
    this.generation++;
    this.attempt = 0;
    this.failingSince = undefined;
    this.setState({ kind: "open" });
    this.events.emit("hello", hello);
    if (this.lastSeq >= this.catchUpTo) this.markCaughtUp();
    return true;
  }

  private onFrame(text: string): void {
    const decoded = decodeServerFrame(text);
    // Unknown types and invalid frames are skipped: a newer server may add either; the seq still moves on.
    const seq = decoded.ok ? decoded.value.seq : seqOf(text);
    if (seq !== undefined) {
      if (this.lastSeq !== undefined && seq <= this.lastSeq) return;
      this.lastSeq = seq;
    }
    if (decoded.ok) this.events.emit("message", decoded.value);
    if (!this.caughtUp && seq !== undefined && seq >= this.catchUpTo) this.markCaughtUp();
  }

  private markCaughtUp(): void {
    this.caughtUp = true;
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
    this.events.emit("caughtUp", { generation: this.generation });
  }

  private async onSocketClosed(code: number, reason: string, helloSeen: boolean, after: number | undefined): Promise<void> {
    this.socket = undefined;
    this.caughtUp = false;
    if (helloSeen && code === 1000) {
      return this.close(new NotFoundError({ code: "TETHER_ERR_SESSION_STOPPED", message: `The session was deleted (${reason || "stream closed"}).`, hint: "Create a new session." }));
    }
    if (helloSeen && code === 1011) {
      return this.close(new SessionStartError({ code: "TETHER_ERR_SESSION_START_FAILED", message: `The session failed: ${reason}`, hint: "Delete it and create a new session." }));
    }
    const error = helloSeen ? transportError("network", `The stream dropped (close ${code}${reason ? `: ${reason}` : ""}).`) : await this.diagnose(after);
    if (this.state.kind === "closed") return;
    if (error instanceof EventsExpiredError) {
      // What came meanwhile is gone: say so, then follow the session live from now on.
      this.lastSeq = undefined;
      this.events.emit("expired", error);
      return this.scheduleReconnect(error, 0);
    }
    if (!isRetryable(error)) return this.close(error);
    this.scheduleReconnect(error);
  }

  /** Why an upgrade failed: a plain GET of the stream URL runs the same checks and answers with the status. */
  private async diagnose(after: number | undefined): Promise<TetherError> {
    const path = this.path(after);
    try {
      const { status, body, retryAfter } = await this.options.http.probe(path);
      const code = stringField(isRecord(body) ? body.error : undefined, "code");
      // 404 without a Tether error: the route was reached and only refused the missing upgrade. Transient.
      if ((status === 404 && code === undefined) || status < 400) return transportError("network", `The stream's upgrade failed though GET ${path} passes its checks (HTTP ${status}).`);
      return errorFromResponse(status, body, retryAfter, `The stream of session ${this.options.sessionId}`);
    } catch (error) {
      return error instanceof TetherError ? error : transportError("network", errorMessage(error), error);
    }
  }

  private scheduleReconnect(error: TetherError, forcedDelayMs?: number): void {
    const now = Date.now();
    this.failingSince ??= now;
    const { reconnect } = this.options.config;
    if (now - this.failingSince > reconnect.giveUpAfterMs) {
      return this.close(new ConnectionError({ code: error.code, message: `Gave up reconnecting the stream after ${reconnect.giveUpAfterMs} ms: ${error.message}`, hint: error.hint, cause: error }));
    }
    const delayMs = forcedDelayMs ?? backoffDelayMs(this.attempt, reconnect);
    this.attempt++;
    this.setState({ kind: "reconnecting", attempt: this.attempt, delayMs, error });
    this.timer = setTimeout(() => this.connect(), delayMs);
  }

  private setState(state: StreamState): void {
    this.state = state;
    this.events.emit("state", state);
  }

  private path(after: number | undefined): string {
    return `/v1/sessions/${encodeURIComponent(this.options.sessionId)}/stream${after === undefined ? "" : `?after=${after}`}`;
  }

  private url(after: number | undefined): string {
    return `${this.options.config.baseUrl.replace(/^http/i, "ws")}${this.path(after)}`;
  }
}

function closedError(): TetherError {
  return new TetherError({ code: ClientErrorCodes.CLOSED, message: "The session's stream is closed.", hint: "Get a new handle with tether.session(id)." });
}

function expiredError(message: string): EventsExpiredError {
  return new EventsExpiredError({ code: "TETHER_ERR_EVENTS_EXPIRED", message, hint: "Results are read from GET /v1/sessions/:id/executions/:requestId instead." });
}

/** The seq of a frame the schemas refused (a newer message type), so that it is not replayed again. */
function seqOf(text: string): number | undefined {
  const match = /^\{"seq":(\d+),/.exec(text);
  return match ? Number(match[1]) : undefined;
}
