import { MessageCodec, ServerMessage, numberField, type DecodeResult } from "@tether/shared";

/** What a stream delivers for one execution (everything but hello, session_status and protocol_error). */
export type ExecutionStreamEvent = Exclude<ServerMessage, { type: "hello" | "session_status" | "protocol_error" }>;
export type ServerHello = Extract<ServerMessage, { type: "hello" }>;
export type SessionStatusMessage = Extract<ServerMessage, { type: "session_status" }>;
export type ProtocolErrorMessage = Extract<ServerMessage, { type: "protocol_error" }>;

/** A server message with the session-wide `seq` the orchestrator numbers it with (none on hello and protocol_error). */
export interface NumberedMessage {
  message: ServerMessage;
  seq: number | undefined;
}

let codec: MessageCodec<typeof ServerMessage> | undefined;

/**
 * Validates one frame against the protocol's schemas (compiled on first use).
 * Unknown message types are not an error for a client: the protocol only ever
 * adds them, and clients ignore what they do not know.
 */
export function decodeServerFrame(text: string): { ok: true; value: NumberedMessage } | { ok: false; unknownType: boolean; message: string } {
  codec ??= new MessageCodec(ServerMessage);
  const decoded: DecodeResult<ServerMessage> = codec.decode(text);
  if (!decoded.ok) return { ok: false, unknownType: decoded.code === "TETHER_ERR_PROTOCOL_UNKNOWN_TYPE", message: decoded.message };
  return { ok: true, value: { message: decoded.value, seq: numberField(decoded.value, "seq") } };
}
