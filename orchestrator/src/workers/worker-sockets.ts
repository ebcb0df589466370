import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import { LivenessWatch, WorkerCloseCodes, type LinkTransport, type ResumableLink, type WorkerMessage } from "@tether/shared";
import { ErrorCodes, errnoCode, type ErrorCode } from "../errors.js";

/** How many heartbeat intervals a dropped link is held for the worker's resume. */
export const RESUME_HOLD_INTERVALS = 3;

/** What the sockets tell their connection. */
export interface WorkerSocketEvents {
  /** A frame from the current socket. */
  frame(data: RawData, isBinary: boolean): void;
  /** The socket dropped and the link is held for the worker's resume: byte streams on it are lost. */
  held(): void;
  /** The connection is over: closed on purpose, or dropped and not resumable (or not resumed in time). */
  ended(code: number, reason: string): void;
  /** The connection is closed for good already. */
  isClosed(): boolean;
}

/**
 * The sockets under one worker connection, one after another: only the
 * current one speaks for the worker, the heartbeat runs on it, and when it
 * drops unexpectedly the link is held for the worker's resume over a new one.
 */
export class WorkerSockets {
  /** Why the connection ended, or is ending: the first to end it says why. */
  closeReason: { code: ErrorCode; message: string } | undefined;
  private socket!: WebSocket;
  private readonly liveness: LivenessWatch;
  private paused = false;

  constructor(
    socket: WebSocket,
    private readonly link: ResumableLink<WorkerMessage>,
    private readonly heartbeatIntervalMs: number,
    private readonly logger: Logger,
    private readonly events: WorkerSocketEvents,
  ) {
    this.liveness = new LivenessWatch({
      intervalMs: heartbeatIntervalMs,
      ping: () => {
        if (this.link.state === "connected") this.socket.ping();
      },
      onSilent: (silentMs) => {
        this.closeReason = { code: ErrorCodes.WORKER_LOST, message: `The worker stopped answering heartbeats (no pong for ${silentMs} ms).` };
        this.logger.warn("worker missed 3 heartbeats; treating it as lost");
        this.socket.terminate();
      },
    });
    this.bind(socket);
  }

  sendBinary(frame: Uint8Array): void {
    if (this.link.state === "connected") this.socket.send(frame, { binary: true });
  }

  /** Stops (true) or starts again (false) reading the worker; a socket that replaces this one stays paused. */
  pauseReading(paused: boolean): void {
    this.paused = paused;
    // Pongs are not read while paused: that silence is ours, not the worker's.
    this.liveness.suspend(paused);
    if (paused) {
      if (this.link.state === "connected") this.socket.pause();
    } else if (!this.events.isClosed() && this.link.state === "connected") {
      this.socket.resume();
    }
  }

  /** The worker resumed over `socket`: it replaces the current one (the link drops that one if it still looked open). */
  replace(socket: WebSocket): void {
    this.bind(socket);
    this.link.rebind(transportOf(socket));
  }

  /** The resume handshake is done: the heartbeat counts from now, and a paused connection stays paused. */
  resumed(): void {
    this.liveness.restart();
    if (this.paused) this.socket.pause();
  }

  /** Starts the close handshake on the current socket. */
  close(code: number, reason: string): void {
    this.socket.close(code, reason);
    // A worker that never answers the close handshake must not keep the socket.
    const socket = this.socket;
    setTimeout(() => socket.terminate(), 2000).unref();
  }

  /** The connection is over: no more heartbeats. */
  stop(): void {
    this.liveness.stop();
  }

  private bind(socket: WebSocket): void {
    this.socket = socket;
    // Events of a replaced socket are ignored: only the current one speaks for the worker.
    socket.on("message", (data, isBinary) => {
      if (this.socket === socket) this.events.frame(data, isBinary);
    });
    socket.on("pong", () => {
      if (this.socket === socket) this.liveness.heard();
    });
    socket.on("close", (code, reason) => {
      if (this.socket === socket) this.onSocketClose(code, reason.toString());
    });
    socket.on("error", (error) => {
      this.logger.warn({ err: error }, "worker socket error");
      // A frame over our limit: resuming would only bring the same frame back. The link is done.
      if (this.socket === socket && errnoCode(error) === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        this.closeReason ??= { code: ErrorCodes.WORKER_LOST, message: "The worker sent a frame over the link's size limit." };
      }
    });
  }

  private onSocketClose(code: number, reason: string): void {
    if (this.events.isClosed()) return;
    // Closed on purpose (by us, by a missed heartbeat, by the worker stopping): gone for good.
    if (this.closeReason || code === WorkerCloseCodes.shutdown) {
      this.events.ended(code, reason);
      return;
    }
    const holdMs = RESUME_HOLD_INTERVALS * this.heartbeatIntervalMs;
    const held = this.link.hold(holdMs, () => {
      this.closeReason = {
        code: ErrorCodes.WORKER_LOST,
        message: `The worker connection dropped (code ${code}${reason ? `: ${reason}` : ""}) and the worker did not reconnect within ${holdMs} ms.`,
      };
      this.events.ended(code, reason);
    });
    if (!held) {
      this.events.ended(code, reason);
      return;
    }
    this.liveness.stop();
    this.events.held();
    this.logger.warn({ code, reason, holdMs }, "worker link dropped; holding its state for a resume");
  }
}

/** The link's view of one socket. */
export function transportOf(socket: WebSocket): LinkTransport {
  return {
    sendText: (frame) => socket.send(frame, { binary: false }),
    terminate: () => socket.terminate(),
  };
}
