import { Type, type Static } from "@sinclair/typebox";
import { ExecutionEvent, RequestId } from "./execution.js";
import { SessionPhase, SessionStatus, SessionStopReason } from "./rest.js";

/**
 * Client <-> orchestrator protocol on `GET /v1/sessions/:id/stream`. Every
 * server message has a `type` and the `requestId` it belongs to (null when it
 * concerns the whole session).
 */

// ---- client -> server -------------------------------------------------------

export const ClientExecute = Type.Object({
  type: Type.Literal("execute"),
  requestId: RequestId,
  code: Type.String(),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
});

export const ClientInputReply = Type.Object({
  type: Type.Literal("input_reply"),
  requestId: RequestId,
  value: Type.String(),
});

/** Interrupt the running execution (whichever client started it). */
export const ClientInterrupt = Type.Object({
  type: Type.Literal("interrupt"),
  requestId: Type.Optional(RequestId),
});

export const ClientMessage = Type.Union([ClientExecute, ClientInputReply, ClientInterrupt]);
export type ClientMessage = Static<typeof ClientMessage>;
export type ClientExecute = Static<typeof ClientExecute>;

// ---- server -> client -------------------------------------------------------

/** First frame after the socket opens. */
export const ServerHello = Type.Object({
  type: Type.Literal("hello"),
  requestId: Type.Null(),
  sessionId: Type.String(),
  protocolVersion: Type.String(),
  /** The session's status and phase when the socket opened; later changes come as session_status. */
  status: Type.Optional(SessionStatus),
  phase: Type.Optional(SessionPhase),
  /**
   * The seq of the session's last message before this connection (0: none yet).
   * Every later message but protocol_error carries a larger `seq`; reconnect with
   * `?after=<the last seq you saw>` to get every message you missed, exactly once.
   */
  lastSeq: Type.Optional(Type.Integer({ minimum: 0 })),
});

/**
 * The session changed phase: start progress (`queued → launching → connected →
 * ready`), scale to zero (`stopping → stopped`, with `stopReason`), or `failed`
 * with `reason`. The socket stays open across stop and resume.
 */
export const SessionStatusMessage = Type.Object({
  type: Type.Literal("session_status"),
  requestId: Type.Null(),
  status: SessionStatus,
  phase: SessionPhase,
  /** Why it failed or stopped, when it did. */
  reason: Type.Optional(Type.String()),
  stopReason: Type.Optional(SessionStopReason),
});
export type SessionStatusMessage = Static<typeof SessionStatusMessage>;

/**
 * Sent before the output of the execution that resumed a stopped session on a
 * new worker: workspace files were restored, variables and imports are gone.
 */
export const SessionResumed = Type.Object({
  type: Type.Literal("session_resumed"),
  requestId: RequestId,
  stateLost: Type.Literal(true),
  /** Files copied back from the last snapshot. */
  restoredFiles: Type.Integer({ minimum: 0 }),
});
export type SessionResumed = Static<typeof SessionResumed>;

/** A frame the server refused; the connection and the session keep working. */
export const ProtocolError = Type.Object({
  type: Type.Literal("protocol_error"),
  requestId: Type.Union([Type.String(), Type.Null()]),
  code: Type.String(),
  message: Type.String(),
});
export type ProtocolError = Static<typeof ProtocolError>;

export const ServerMessage = Type.Union([
  ServerHello,
  ExecutionEvent,
  ProtocolError,
  SessionStatusMessage,
  SessionResumed,
]);
export type ServerMessage = Static<typeof ServerMessage>;
