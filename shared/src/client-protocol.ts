import { Type, type Static } from "@sinclair/typebox";
import {
  ClearOutputEvent,
  DisplayEvent,
  DoneEvent,
  ErrorEvent,
  InputRequestEvent,
  KernelDiedEvent,
  RequestId,
  ResultEvent,
  StatusEvent,
  StreamEvent,
} from "./execution.js";

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
});

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
  StreamEvent,
  DisplayEvent,
  ResultEvent,
  ErrorEvent,
  ClearOutputEvent,
  InputRequestEvent,
  StatusEvent,
  KernelDiedEvent,
  DoneEvent,
  ProtocolError,
]);
export type ServerMessage = Static<typeof ServerMessage>;
