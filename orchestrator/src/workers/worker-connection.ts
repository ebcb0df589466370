import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import {
  ResumableLink,
  WorkerCloseCodes,
  type LinkState,
  type OrchestratorMessage,
  type WorkerCallParams,
  type WorkerCallResult,
  type WorkerCallType,
  type WorkerMessage,
} from "@tether/shared";
import { ErrorCodes, TetherError, tetherError, type ErrorCode } from "../errors.js";
import { FileStreams, transferInterrupted } from "./file-streams.js";
import { PendingCalls } from "./pending-calls.js";
import { ResumeCredential } from "./resume-credential.js";
import { UNSEQUENCED_FROM_WORKER, routeWorkerFrame, workerCodec, type FramePort, type WorkerSessionMessage } from "./worker-frames.js";
import { WorkerSockets, transportOf } from "./worker-sockets.js";

export { toBuffer, workerCodec, type WorkerSessionMessage } from "./worker-frames.js";
export { RESUME_HOLD_INTERVALS } from "./worker-sockets.js";

export interface WorkerConnectionHandler {
  /** `raw` is the message's JSON as received (seq stripped), so events can be relayed without re-serialising. */
  onMessage(message: WorkerSessionMessage, raw: Uint8Array): void;
  /** The connection is gone for good (lost, closed by either side). Called once. */
  onClose(code: ErrorCode, reason: string): void;
}

/** `open` until the worker is gone for good; a dropped socket held for a resume is still `open` (see `link`). */
export type WorkerConnectionState = "open" | "closed";

export interface WorkerConnectionOptions {
  /**
   * The worker advertised `resume` (protocol 1.1): frames are sequenced and
   * acked both ways, and a dropped socket is held RESUME_HOLD_INTERVALS
   * heartbeats for the worker to resume over a new one. Default false.
   */
  resumable?: boolean;
  /**
   * Issue a fresh resume token on every resume (default true). In a cluster
   * the token's digest lives in the shared store, and a replica dying right
   * after a rotation would strand the worker with a token nobody knows: the
   * token then stays for the worker's life.
   */
  rotateResumeToken?: boolean;
}

/** Where the previous owner's link stood, for a replica taking the worker over. */
export interface LinkTakeover {
  /** The last frame the worker says it received from the previous owner. */
  sentSeq: number;
  /** The last worker frame whose effects the previous owner persisted. */
  deliveredSeq: number;
  /** The worker's resume token, as its digest (base64). */
  resumeDigest: string;
}

/**
 * One worker's websocket after the handshake. Composes the resumable link
 * (shared), the socket(s) under it with the heartbeat (worker-sockets.ts),
 * typed calls correlated by callId, and file byte streams; incoming frames
 * go through worker-frames.ts. With a resumable worker it outlives its
 * socket: only a worker that stays away past the hold is lost.
 */
export class WorkerConnection {
  readonly resumable: boolean;
  private readonly sockets: WorkerSockets;
  private readonly link: ResumableLink<WorkerMessage>;
  private readonly calls = new PendingCalls();
  private readonly streams: FileStreams;
  private readonly frames: FramePort;
  private readonly credential = new ResumeCredential();
  private handler: WorkerConnectionHandler | undefined;
  private readonly pausers = new Set<object>();
  private closed = false;
  private readonly closedCallbacks: (() => void)[] = [];
  private readonly rotateResumeToken: boolean;

  constructor(
    socket: WebSocket,
    readonly workerId: string,
    /** null for a warm-pool worker not yet claimed. */
    readonly sessionId: string | null,
    heartbeatIntervalMs: number,
    private readonly logger: Logger,
    options: WorkerConnectionOptions = {},
  ) {
    this.resumable = options.resumable === true;
    this.rotateResumeToken = options.rotateResumeToken !== false;
    this.link = new ResumableLink(transportOf(socket), {
      decode: (text) => workerCodec.decode(text),
      unsequenced: UNSEQUENCED_FROM_WORKER,
      sequenced: this.resumable,
    });
    this.streams = new FileStreams({
      send: (message) => this.send(message),
      sendBinary: (frame) => this.sockets.sendBinary(frame),
      isConnected: () => this.link.state === "connected",
      goneError: () => (this.closed ? this.lostError() : undefined),
      startCall: (type, params, timeoutMs) => this.startCall(type, params, timeoutMs),
      failCall: (callId, error) => this.calls.fail(callId, error),
    });
    const { link, calls, streams } = this;
    this.frames = { link, calls, streams, logger, send: (message) => this.send(message), deliver: (message, raw) => this.handler?.onMessage(message, raw) };
    this.sockets = new WorkerSockets(socket, this.link, heartbeatIntervalMs, logger, {
      frame: (data, isBinary) => routeWorkerFrame(this.frames, data, isBinary),
      held: () => this.streams.failAll(transferInterrupted()),
      ended: (code, reason) => this.finalClose(code, reason),
      isClosed: () => this.closed,
    });
  }

  /**
   * A worker whose owner replica is gone resumes here: the link continues
   * where the previous owner's persisted state ends, the worker is told to
   * resend what came after, and acks wait for this replica's persistence too.
   * Undefined when the token does not match.
   */
  static takeOver(socket: WebSocket, resume: { workerId: string; resumeToken: string }, sessionId: string, takeover: LinkTakeover, heartbeatIntervalMs: number, logger: Logger): WorkerConnection | undefined {
    const credential = new ResumeCredential();
    credential.adoptDigest(takeover.resumeDigest);
    if (!credential.matches(resume.resumeToken)) return undefined;
    const connection = new WorkerConnection(socket, resume.workerId, sessionId, heartbeatIntervalMs, logger, { resumable: true, rotateResumeToken: false });
    connection.credential.adoptDigest(takeover.resumeDigest);
    connection.link.continueAfter(takeover.sentSeq, takeover.deliveredSeq);
    connection.link.deferAcks();
    connection.link.sendControl(JSON.stringify({ type: "resumed", lastSeqReceived: takeover.deliveredSeq } satisfies OrchestratorMessage));
    logger.info({ workerDelivered: takeover.sentSeq, persisted: takeover.deliveredSeq }, "worker taken over from another replica");
    return connection;
  }

  /** The resume token's digest (base64) once issued: a shared store keeps it for other replicas. */
  get resumeDigest(): string | undefined {
    return this.credential.digest64;
  }

  /** Last worker frame delivered to the session. */
  get delivered(): number {
    return this.link.lastDelivered;
  }

  /** Acknowledge only what confirm() releases (a replica that persists first). */
  deferAcks(): void {
    this.link.deferAcks();
  }

  /** The worker's frames up to `seq` are persisted: it may forget them. */
  confirm(seq: number): void {
    this.link.confirm(seq);
  }

  get state(): WorkerConnectionState {
    return this.closed ? "closed" : "open";
  }

  /** The socket under an open connection: up, or dropped and held for the worker's resume. */
  get linkState(): LinkState {
    return this.link.state;
  }

  setHandler(handler: WorkerConnectionHandler): void {
    this.handler = handler;
  }

  /**
   * Sends a message; false once the worker is gone. With a resumable worker
   * it is sequenced and kept until acked, so a message sent while the link is
   * held goes out when the worker resumes.
   */
  send(message: OrchestratorMessage): boolean {
    return !this.closed && this.link.send(JSON.stringify(message));
  }

  /** Handshake (welcome): never sequenced, dropped while the link is down. */
  sendControl(message: OrchestratorMessage): boolean {
    return !this.closed && this.link.sendControl(JSON.stringify(message));
  }

  /** A fresh resume credential for welcome; only its digest is kept, and the previous one stops working. */
  issueResumeToken(): string {
    return this.credential.issue();
  }

  /** Runs once the connection is closed for good (not on a drop it may resume from). */
  onClosed(callback: () => void): void {
    if (this.closed) callback();
    else this.closedCallbacks.push(callback);
  }

  /**
   * A resume frame for this worker arrived on `socket`. On success the new
   * socket replaces the old one (dropped if it still looked open), the worker
   * is told how far we got, and what it missed is retransmitted.
   */
  resumeLink(socket: WebSocket, resumeToken: string, lastSeqReceived: number): { ok: true } | { ok: false; code: ErrorCode; message: string } {
    const refused = (message: string) => ({ ok: false as const, code: ErrorCodes.WORKER_RESUME_REFUSED, message });
    if (this.closed || !this.link.sequenced) return refused("This worker can no longer be resumed.");
    if (!this.credential.matches(resumeToken)) return refused("The resume token is not valid for this worker.");
    const resend = this.link.framesToResend(lastSeqReceived);
    if (!resend) return refused(`lastSeqReceived ${lastSeqReceived} does not match what was sent.`);
    const gapMs = this.link.state === "held" ? Date.now() - this.link.heldSince : 0;
    if (this.link.state === "connected") {
      // The worker saw the drop first (half-open socket): the old one is dead to it.
      this.logger.info("worker resumed while its old socket still looked open; dropping the old one");
      this.streams.failAll(transferInterrupted());
    }
    this.sockets.replace(socket);
    const rotated = this.rotateResumeToken ? { resumeToken: this.credential.issue() } : {};
    this.link.sendControl(JSON.stringify({ type: "resumed", ...rotated, lastSeqReceived: this.link.handshakeSeq } satisfies OrchestratorMessage));
    this.link.resend(resend);
    this.sockets.resumed();
    this.logger.info({ gapMs, retransmitted: resend.length, workerDelivered: lastSeqReceived, weDelivered: this.link.lastDelivered }, "worker link resumed");
    return { ok: true };
  }

  /** Calls the worker; resolves with its validated call_result value. `timeoutMs` 0 = no timeout. */
  call<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>, timeoutMs: number): Promise<WorkerCallResult<T>> {
    return this.startCall(type, params, timeoutMs).result;
  }

  download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }> {
    return this.streams.download(path, timeoutMs);
  }

  upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<WorkerCallResult<"file_upload">> {
    return this.streams.upload(path, source, maxBytes);
  }

  /** Stops reading the worker socket until every pauser resumed (client backpressure). */
  pause(pauser: object): void {
    if (this.pausers.has(pauser)) return;
    this.pausers.add(pauser);
    if (this.pausers.size === 1) this.sockets.pauseReading(true);
  }

  resume(pauser: object): void {
    if (!this.pausers.delete(pauser) || this.pausers.size > 0) return;
    this.sockets.pauseReading(false);
  }

  /**
   * The worker was told to shut down: its socket closing from here on (the
   * process exits, often before our close) ends the link, not a hold for a
   * resume that will never come.
   */
  shuttingDown(reason: string): void {
    this.sockets.closeReason ??= { code: ErrorCodes.WORKER_LOST, message: `The worker connection was closed: ${reason}.` };
  }

  /** Closes the socket; the handler's onClose still runs once. */
  close(code: number = WorkerCloseCodes.shutdown, reason = "session ended"): void {
    if (this.closed) return;
    this.shuttingDown(reason);
    if (this.link.state !== "connected") {
      this.finalClose(code, reason);
      return;
    }
    this.link.flushAck();
    this.sockets.close(code, reason);
  }

  private startCall<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>, timeoutMs: number): { callId: string; result: Promise<WorkerCallResult<T>> } {
    return this.calls.start(type, params, timeoutMs, (json) => !this.closed && this.link.send(json), () => this.lostError());
  }

  private finalClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.link.close();
    this.sockets.stop();
    const closeReason = (this.sockets.closeReason ??= { code: ErrorCodes.WORKER_LOST, message: `The worker connection closed unexpectedly (code ${code}${reason ? `: ${reason}` : ""}).` });
    const error = this.lostError();
    this.calls.failAll(error);
    this.streams.failAll(error);
    for (const callback of this.closedCallbacks.splice(0)) callback();
    this.handler?.onClose(closeReason.code, closeReason.message);
  }

  private lostError(): TetherError {
    const cause = this.sockets.closeReason ?? { code: ErrorCodes.WORKER_LOST, message: "The worker connection is closed." };
    return tetherError(cause.code, cause.message);
  }
}
