import type { Logger } from "pino";
import type { RawData } from "ws";
import { MessageCodec, WorkerMessage, decodeBinaryFrame, type OrchestratorMessage, type ResumableLink } from "@tether/shared";
import { ErrorCodes } from "../errors.js";
import type { FileStreams } from "./file-streams.js";
import type { PendingCalls } from "./pending-calls.js";

/** Decodes every frame a worker sends; built once, shared by all connections. */
export const workerCodec = new MessageCodec(WorkerMessage);

/** Messages the connection hands to its owner (calls, streams and link control it settles itself). */
export type WorkerSessionMessage = Exclude<WorkerMessage, { type: "call_result" | "stream_ack" | "stream_end" | "hello" | "ack" | "resume" }>;

/** Link control and handshake a worker may send without a seq. */
export const UNSEQUENCED_FROM_WORKER: ReadonlySet<string> = new Set(["ack", "resume", "hello"]);

/** What routing a worker's frames needs of its connection. */
export interface FramePort {
  readonly link: ResumableLink<WorkerMessage>;
  readonly calls: PendingCalls;
  readonly streams: FileStreams;
  readonly logger: Logger;
  /** Answers the worker (a protocol_error); false once it is gone. */
  send(message: OrchestratorMessage): boolean;
  /** Hands a message to the connection's owner. */
  deliver(message: WorkerSessionMessage, raw: Uint8Array): void;
}

/**
 * One frame from the worker's current socket. Binary frames carry file
 * bytes; a text frame goes through the link (seq, acks, validation), then
 * settles a call or a stream, or goes to the connection's owner.
 */
export function routeWorkerFrame(port: FramePort, data: RawData, isBinary: boolean): void {
  const buffer = toBuffer(data);
  if (isBinary) {
    const frame = decodeBinaryFrame(buffer);
    if (!frame || !port.streams.deliver(frame.streamId, frame.payload)) port.logger.debug({ streamId: frame?.streamId }, "binary frame for no open download; dropped");
    return;
  }
  const received = port.link.receive(buffer);
  if (received.kind === "handled") return;
  if (received.kind === "refused") {
    port.logger.warn({ code: received.code, message: received.message }, "invalid frame from worker");
    port.send({ type: "protocol_error", requestId: received.requestId, code: received.code, message: received.message });
    return;
  }
  const { message, raw } = received;
  switch (message.type) {
    case "ack":
      return; // the link settles acks
    case "resume":
    case "hello":
      port.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `'${message.type}' is only valid as the first frame of a new connection.` });
      return;
    case "call_result":
      port.calls.answer(message.callId, message.ok ? { ok: true, value: message.value } : { ok: false, error: message.error });
      return;
    case "stream_ack":
      port.streams.credit(message.streamId, message.bytes);
      return;
    case "stream_end":
      port.streams.ended(message.streamId, message.error);
      return;
    case "worker_ready":
    case "worker_failed":
    case "stream":
    case "display":
    case "result":
    case "error":
    case "clear_output":
    case "input_request":
    case "status":
    case "kernel_died":
    case "done":
    case "protocol_error":
      port.deliver(message, raw);
      return;
    default: {
      const unreachable: never = message;
      return unreachable;
    }
  }
}

/** ws hands text and binary frames over as a Buffer (default binaryType); the other shapes only with other settings. */
export function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
