import { Type } from "@sinclair/typebox";
import type { FastifyBaseLogger } from "fastify";
import type { RawData, WebSocket } from "ws";
import { ClientMessage, MessageCodec, PROTOCOL_VERSION, type ServerMessage } from "@tether/shared";
import { SessionParams, sessionOf, startExecution, type AppContext, type RouteScope } from "./route-context.js";
import { effectiveExecTimeoutMs } from "../config.js";
import { ErrorCodes, TetherError, tetherError, type ErrorCode } from "../errors.js";
import type { LoggedEvent } from "../sessions/event-log.js";
import type { Session, SessionObserver } from "../sessions/session.js";
import { toBuffer } from "../workers/worker-connection.js";
import { setMaxPayload } from "../ws-limits.js";

const clientCodec = new MessageCodec(ClientMessage);

/** Above this many bytes queued for a client, stop reading its session's worker... */
const HIGH_WATER_BYTES = 1024 * 1024;
/** ...until the client has drained to this. */
const LOW_WATER_BYTES = 256 * 1024;

/** `GET /v1/sessions/:id/stream`: a client's duplex view of one session. */
export function registerClientStream(scope: RouteScope, context: AppContext): void {
  scope.get(
    "/v1/sessions/:id/stream",
    {
      websocket: true,
      config: { allowQueryToken: true },
      schema: { params: SessionParams, querystring: StreamQuery },
      // Resolved before the upgrade, so a foreign or unknown session is a plain HTTP 404, and
      // `after` older than what the session keeps a plain 410.
      preHandler: async (request) => {
        const session = sessionOf(context, request);
        const after = afterOf(request.query);
        if (after !== undefined) {
          const replay = session.events.log.after(after);
          if (!replay.ok) throw eventsExpired(after, replay.oldestSeq);
        }
      },
    },
    (socket, request) => {
      const session = sessionOf(context, request);
      const logger = request.log.child({ sessionId: session.id });
      new ClientStream(socket, session, context, logger).open(afterOf(request.query));
    },
  );
}

const StreamQuery = Type.Object({
  token: Type.Optional(Type.String()),
  /** Replay every retained message with a larger seq before the live ones. */
  after: Type.Optional(Type.String({ pattern: "^[0-9]{1,15}$" })),
});

function afterOf(query: { after?: string }): number | undefined {
  return query.after === undefined ? undefined : Number(query.after);
}

function eventsExpired(after: number, oldestSeq: number) {
  return tetherError(ErrorCodes.EVENTS_EXPIRED, `Messages after seq ${after} are no longer kept: the oldest the session still has is ${oldestSeq}.`, {
    hint: `Reconnect with after=${oldestSeq - 1} to get what is kept, and read finished executions with GET /v1/sessions/:id/executions/:requestId.`,
  });
}

type ClientStreamState = "open" | "closed";

class ClientStream implements SessionObserver {
  private state: ClientStreamState = "open";
  private pausedWorker = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly session: Session,
    private readonly context: AppContext,
    private readonly logger: FastifyBaseLogger,
  ) {}

  /** Says hello, replays what came after `after` (when given), then follows the session live. */
  open(after: number | undefined): void {
    // Frames up to twice the limit get a protocol_error (the connection stays); larger ones close the socket
    // with 1009 as their header arrives, before anything is buffered.
    setMaxPayload(this.socket, this.context.config.maxClientFrameBytes * 2);
    const log = this.session.events.log;
    // Connectable while starting (wait: false): hello says where the session is, session_status follows each change.
    this.send({ type: "hello", requestId: null, sessionId: this.session.id, protocolVersion: PROTOCOL_VERSION, status: this.session.state, phase: this.session.phase, lastSeq: log.publishedSeq });
    // Replay and subscription happen in one synchronous step: no message can fall between them.
    if (after !== undefined) {
      const replay = log.after(after);
      if (replay.ok) for (const event of replay.events) this.deliver(event);
    }
    this.session.events.observers.add(this);
    this.socket.on("message", (data, isBinary) => this.onFrame(data, isBinary));
    this.socket.on("close", () => this.onClose());
    this.socket.on("error", (error) => this.logger.debug({ err: error }, "client socket error"));
  }

  /** Hot path: sends the logged frame as it is (the worker's JSON with its seq spliced in front). */
  deliver(event: LoggedEvent): void {
    if (this.state !== "open") return;
    this.corkUntilTick();
    this.socket.send(event.frame, { binary: false }, this.afterSend);
    this.context.metrics?.clientFrameSent(event.frame.byteLength);
    if (!this.pausedWorker && this.socket.bufferedAmount > HIGH_WATER_BYTES) {
      // A slow client: stop reading the worker rather than buffer without bound...
      this.pausedWorker = true;
      this.session.backpressure.pause(this);
      // ...but not for long: every other client of the session waits too, and so does the worker.
      this.slowTimer = setTimeout(() => this.dropSlowClient(), this.context.config.slowClientTimeoutMs);
      this.slowTimer.unref();
    }
  }

  private slowTimer: NodeJS.Timeout | undefined;

  /** Still backed up after TETHER_SLOW_CLIENT_TIMEOUT_MS: disconnect it (1013, try again later) and let the worker go on. */
  private dropSlowClient(): void {
    if (this.state !== "open" || !this.pausedWorker) return;
    this.logger.warn({ bufferedBytes: this.socket.bufferedAmount, timeoutMs: this.context.config.slowClientTimeoutMs }, "disconnecting a client that stopped reading");
    // Its buffered frames are lost to it; the session's event log (?after=) is how it catches up.
    // The close frame waits behind what is buffered: a client that reads again sees 1013 and its reason;
    // one that never does is cut by ws's close timeout (30 s). Either way it no longer holds anyone back.
    this.socket.close(1013, `${ErrorCodes.CLIENT_TOO_SLOW}: not reading for ${this.context.config.slowClientTimeoutMs} ms`);
    this.context.metrics?.slowClientDisconnected();
    this.onClose();
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    netSocketOf(this.socket)?.uncork();
  };

  /**
   * The frames of one worker read (often dozens of stream events) leave in one
   * write: without it each relayed event cost its own writev syscall, the top
   * cost of the relay under load (bench/results/orchestrator-scale.json).
   */
  private corkUntilTick(): void {
    if (this.corked) return;
    const raw = netSocketOf(this.socket);
    if (!raw) return;
    raw.cork();
    this.corked = true;
    process.nextTick(this.uncork);
  }

  sessionEnded(state: "stopped" | "failed" | "moved", reason: string): void {
    if (this.state !== "open") return;
    if (state === "moved") {
      // 1012 (service restart): reconnect with ?after=<last seq seen>, through any replica.
      this.socket.close(1012, `${ErrorCodes.SESSION_MOVED}: reconnect with ?after=`);
      return;
    }
    // Close reasons are limited to 123 bytes.
    this.socket.close(state === "stopped" ? 1000 : 1011, `session ${state}: ${reason}`.slice(0, 100));
  }

  private readonly afterSend = (): void => {
    if (this.pausedWorker && this.socket.bufferedAmount <= LOW_WATER_BYTES) this.resumeWorker();
  };

  private resumeWorker(): void {
    if (!this.pausedWorker) return;
    clearTimeout(this.slowTimer);
    this.pausedWorker = false;
    this.session.backpressure.resume(this);
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (isBinary) return this.protocolError(null, ErrorCodes.PROTOCOL_BINARY_UNSUPPORTED, "Binary frames are not supported; send JSON text frames.");
    const buffer = toBuffer(data);
    const maxBytes = this.context.config.maxClientFrameBytes;
    if (buffer.byteLength > maxBytes) {
      return this.protocolError(null, ErrorCodes.PROTOCOL_FRAME_TOO_LARGE, `The frame is ${buffer.byteLength} bytes; the limit is ${maxBytes}.`);
    }
    const decoded = clientCodec.decode(buffer.toString("utf8"));
    if (!decoded.ok) return this.protocolError(decoded.requestId, decoded.code, decoded.message);
    const message = decoded.value;
    try {
      switch (message.type) {
        case "execute":
          startExecution(
            this.context,
            this.session,
            {
              requestId: message.requestId,
              code: message.code,
              timeoutMs: effectiveExecTimeoutMs(this.context.config, message.timeoutMs),
              stdin: { mode: "interactive" },
            },
            // Events reach this client (and every other one) as an observer.
            undefined,
          ).catch((error: unknown) => this.refuse(message.requestId, error));
          return;
        case "input_reply":
          this.session.inputReply(message.requestId, message.value);
          return;
        case "interrupt":
          this.session.interrupt(message.requestId).catch((error: unknown) => this.refuse(message.requestId ?? null, error));
          return;
        default: {
          const unreachable: never = message;
          return unreachable;
        }
      }
    } catch (error) {
      this.refuse(message.requestId ?? null, error);
    }
  }

  private refuse(requestId: string | null, error: unknown): void {
    if (error instanceof TetherError) return this.protocolError(requestId, error.code, error.message);
    this.logger.error({ err: error }, "client frame handling failed");
    this.protocolError(requestId, ErrorCodes.INTERNAL, "The server failed to handle the frame.");
  }

  private protocolError(requestId: string | null, code: ErrorCode, message: string): void {
    this.send({ type: "protocol_error", requestId, code, message });
  }

  private send(message: ServerMessage): void {
    if (this.state === "open") this.socket.send(JSON.stringify(message));
  }

  private onClose(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    // Executions this client started keep running; only its view goes away.
    this.session.events.observers.remove(this);
    this.resumeWorker();
  }
}

/** ws keeps its net.Socket private (`_socket`); undefined if that ever changes (then frames simply are not batched). */
function netSocketOf(socket: WebSocket): { cork(): void; uncork(): void } | undefined {
  const raw: unknown = Reflect.get(socket, "_socket");
  if (typeof raw !== "object" || raw === null || !("cork" in raw) || !("uncork" in raw)) return undefined;
  const { cork, uncork } = raw;
  if (typeof cork !== "function" || typeof uncork !== "function") return undefined;
  return { cork: () => cork.call(raw), uncork: () => uncork.call(raw) };
}
