import { CallAck, RevokedSessionTokens, SessionInfo, SessionTokenInfo, schemaGuard, type ExecuteResponse, type SessionPhase, type SessionStatus, type SessionStopReason } from "@tether/shared";
import type { ResolvedConfig } from "./config.js";
import { Emitter } from "./emitter.js";
import { AbortError, ClientErrorCodes, ConnectionError, SessionStartError, TetherError, type EventsExpiredError } from "./errors.js";
import { ExecutionTracker } from "./execution-tracker.js";
import { Features, supports, type FeatureName } from "./features.js";
import { SessionFiles } from "./files.js";
import type { CallOptions, HttpClient } from "./http.js";
import type { ExecuteOptions, ExecutionCallbacks } from "./pending-execution.js";
import { SessionStream, type StreamState } from "./session-stream.js";

const isSessionInfo = schemaGuard(SessionInfo);
const isCallAck = schemaGuard(CallAck);
const isTokenInfo = schemaGuard(SessionTokenInfo);
const isRevoked = schemaGuard(RevokedSessionTokens);
/** The server gives a restart 120 s to answer. */
const RESTART_TIMEOUT_MS = 150_000;

/** Where the session is: start progress, ready/busy, scale to zero (stopped, with why), failed. */
export interface SessionStatusUpdate {
  status: SessionStatus;
  phase: SessionPhase;
  reason?: string;
  stopReason?: SessionStopReason;
}

export interface SessionEvents {
  /**
   * Every phase change (start progress, stopping → stopped, resume, failure); the current one first.
   * ready ⇄ busy is not a phase change and is not announced: `info()` reads it.
   */
  status: SessionStatusUpdate;
  /** The stream's connection: open, reconnecting (with the delay and why), closed. */
  connection: StreamState;
  /** A reconnect found messages gone (410): some callbacks were skipped; results are still complete. */
  events_expired: EventsExpiredError;
  /** A callback threw, or the server refused a frame of a running execution. */
  error: unknown;
}

export interface WaitUntilReadyOptions {
  signal?: AbortSignal;
  /** Default 180000 ms. */
  timeoutMs?: number;
  /** Each status on the way, the current one first. */
  onProgress?: (update: SessionStatusUpdate) => void;
}

export interface SessionHandleOptions {
  /** Replay the session's messages after this seq when the stream first connects (a reloaded page re-attaching). */
  afterSeq?: number;
}

/**
 * One session. REST calls go out as they are made; the stream (one websocket,
 * reconnected and resumed as needed) opens on the first execute, attach or
 * status listener and stays open until `close()` or `delete()`.
 */
export class Session {
  readonly files: SessionFiles;
  private readonly stream: SessionStream;
  private readonly tracker: ExecutionTracker;
  private readonly emitter: Emitter<SessionEvents>;
  private lastStatus: SessionStatusUpdate | undefined;

  constructor(
    readonly id: string,
    private readonly http: HttpClient,
    config: ResolvedConfig,
    options: SessionHandleOptions = {},
  ) {
    this.emitter = new Emitter<SessionEvents>((error) => this.reportError(error));
    this.files = new SessionFiles(http, id);
    this.stream = new SessionStream({ sessionId: id, config, http, afterSeq: options.afterSeq });
    this.tracker = new ExecutionTracker(id, this.stream, http, (error) => this.reportError(error), (error) => this.emitter.emit("events_expired", error));
    this.stream.events.on("state", (state) => this.emitter.emit("connection", state));
    this.stream.events.on("hello", (hello) => {
      if (hello.status !== undefined && hello.phase !== undefined) this.setStatus({ status: hello.status, phase: hello.phase });
      else if (!supports(hello, "sessionStatus")) this.reportError(featureMissing("sessionStatus", hello.protocolVersion));
    });
    this.stream.events.on("message", ({ message }) => {
      if (message.type !== "session_status") return;
      this.setStatus({ status: message.status, phase: message.phase, ...(message.reason !== undefined ? { reason: message.reason } : {}), ...(message.stopReason ? { stopReason: message.stopReason } : {}) });
    });
  }

  /** The last status the stream reported (undefined before it connected). */
  get status(): SessionStatusUpdate | undefined {
    return this.lastStatus;
  }

  /** The seq of the last stream message seen: keep it to re-attach with `tether.session(id, { afterSeq })`. */
  get lastSeq(): number | undefined {
    return this.stream.seq;
  }

  /**
   * Listens; returns the function that removes the listener. `status` and
   * `connection` listeners open the stream, and are called at once with the
   * current value when there is one.
   */
  on<K extends keyof SessionEvents>(event: K, listener: (payload: SessionEvents[K]) => void): () => void {
    const off = this.emitter.on(event, listener);
    const current = this.currentValues[event]?.();
    if (current !== undefined) this.emitter.emitTo(listener, current);
    if (event === "status" || event === "connection") this.connect().catch(() => undefined);
    return off;
  }

  /** What a new listener of these events gets at once. */
  private readonly currentValues: { [K in keyof SessionEvents]?: () => SessionEvents[K] | undefined } = {
    status: () => this.lastStatus,
    connection: () => (this.stream.current.kind === "idle" ? undefined : this.stream.current),
  };

  /** Opens the stream (if needed) and resolves once it is connected and caught up. */
  connect(): Promise<void> {
    return this.stream.ready();
  }

  /**
   * Runs code; callbacks fire as output arrives (once each, in order, across
   * reconnects). Resolves with everything folded into one result, the shape of
   * the REST execute's answer, whatever the outcome (see `status`).
   */
  execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResponse> {
    return this.tracker.execute(code, options);
  }

  /** Follows an execution started elsewhere (another client, this page before a reload) until it ends. */
  attach(requestId: string, callbacks: ExecutionCallbacks = {}): Promise<ExecuteResponse> {
    return this.tracker.attach(requestId, callbacks);
  }

  /** Resolves once the session can run code (ready, busy, or stopped: the next call resumes it); rejects if it failed. */
  waitUntilReady(options: WaitUntilReadyOptions = {}): Promise<SessionStatusUpdate> {
    const timeoutMs = options.timeoutMs ?? 180_000;
    return new Promise<SessionStatusUpdate>((resolve, reject) => {
      const cleanups: (() => void)[] = [];
      let settled = false;
      const cleanUp = () => {
        for (const cleanup of cleanups.splice(0)) cleanup();
      };
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        cleanUp();
        outcome();
      };
      const timer = setTimeout(() => finish(() => reject(new ConnectionError({ code: ClientErrorCodes.TIMEOUT, message: `The session was not ready within ${timeoutMs} ms.` }))), timeoutMs);
      cleanups.push(() => clearTimeout(timer));
      if (options.signal) {
        const signal = options.signal;
        const onAbort = () => finish(() => reject(new AbortError({ code: ClientErrorCodes.ABORTED, message: "Waiting for the session was aborted." })));
        signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => signal.removeEventListener("abort", onAbort));
      }
      cleanups.push(
        this.emitter.on("connection", (state) => {
          if (state.kind === "closed") finish(() => reject(state.error ?? new ConnectionError({ code: ClientErrorCodes.CLOSED, message: "The session's stream closed." })));
        }),
      );
      const check = (update: SessionStatusUpdate) => {
        if (settled) return;
        options.onProgress?.(update);
        if (update.status === "failed") void this.startFailure(update).then((error) => finish(() => reject(error)));
        else if (update.status !== "starting") finish(() => resolve(update));
      };
      // Last, as the current status may settle it at once (then the listener just added goes too).
      cleanups.push(this.on("status", check));
      if (settled) cleanUp();
      this.connect().catch((error: TetherError) => finish(() => reject(error)));
    });
  }

  info(options: CallOptions = {}): Promise<SessionInfo> {
    return this.http.json({ method: "GET", path: this.path(""), ...options }, isSessionInfo);
  }

  /** Interrupts whatever runs in the session (KeyboardInterrupt); variables survive. */
  async interrupt(options: CallOptions = {}): Promise<void> {
    await this.http.json({ method: "POST", path: this.path("/interrupt"), ...options }, isCallAck);
  }

  /** Restarts the kernel: variables and imports are lost, files stay. */
  async restart(options: CallOptions = {}): Promise<void> {
    await this.http.json({ method: "POST", path: this.path("/restart"), timeoutMs: RESTART_TIMEOUT_MS, ...options }, isCallAck);
  }

  /** Deletes the session (API key only: a session token may not) and closes this handle. */
  async delete(options: CallOptions = {}): Promise<void> {
    await this.http.call({ method: "DELETE", path: this.path(""), ...options });
    this.close();
  }

  /** Mints a session token for a browser (API key only); `ttlS` default 900, at most the server's maximum. */
  createToken(body: { ttlS?: number } = {}, options: CallOptions = {}): Promise<SessionTokenInfo> {
    return this.http.json({ method: "POST", path: this.path("/tokens"), json: body, ...options }, isTokenInfo);
  }

  /** Revokes every session token of the session; resolves with how many were live. */
  async revokeTokens(options: CallOptions = {}): Promise<number> {
    return (await this.http.json({ method: "DELETE", path: this.path("/tokens"), ...options }, isRevoked)).revoked;
  }

  /** Closes the stream; executions still followed reject with TETHER_ERR_CLIENT_CLOSED (they keep running on the server). */
  close(): void {
    this.stream.close();
  }

  private reportingError = false;

  /** To the `error` listeners; an error listener that throws is not reported again (no loop). */
  private reportError(error: unknown): void {
    if (this.reportingError) return;
    this.reportingError = true;
    try {
      this.emitter.emit("error", error);
    } finally {
      this.reportingError = false;
    }
  }

  private setStatus(update: SessionStatusUpdate): void {
    this.lastStatus = update;
    this.emitter.emit("status", update);
  }

  private async startFailure(update: SessionStatusUpdate): Promise<SessionStartError> {
    const failure = await this.info().then((info) => info.failure, () => undefined);
    return new SessionStartError({
      code: failure?.code ?? "TETHER_ERR_SESSION_START_FAILED",
      message: failure?.message ?? `The session failed to start${update.reason ? `: ${update.reason}` : "."}`,
      hint: "Delete the session and create a new one; the message says why the worker did not start.",
    });
  }

  private path(suffix: string): string {
    return `/v1/sessions/${encodeURIComponent(this.id)}${suffix}`;
  }
}

function featureMissing(feature: FeatureName, protocolVersion: string): TetherError {
  return new TetherError({
    code: ClientErrorCodes.FEATURE_UNSUPPORTED,
    message: `The orchestrator (protocol ${protocolVersion}) does not stream the session's status (${feature}, since ${Features[feature].since}): start progress and scale to zero are not reported.`,
    hint: "Upgrade the orchestrator, or poll session.info().",
  });
}
