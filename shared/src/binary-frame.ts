/**
 * Binary websocket frames carry file bytes between orchestrator and worker:
 * a 4-byte big-endian stream id, then the payload. The stream id was opened
 * by a JSON message (file_download / file_upload).
 */
export const BINARY_HEADER_BYTES = 4;

/** Largest payload per binary frame; also the unit of flow-control credit. */
export const FILE_CHUNK_BYTES = 256 * 1024;

/** Bytes a sender may have unacknowledged on one stream before it waits for stream_ack. */
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;

export function encodeBinaryFrame(streamId: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(BINARY_HEADER_BYTES + payload.byteLength);
  new DataView(frame.buffer).setUint32(0, streamId);
  frame.set(payload, BINARY_HEADER_BYTES);
  return frame;
}

/** Returns undefined for a frame too short to hold a header. */
export function decodeBinaryFrame(frame: Uint8Array): { streamId: number; payload: Uint8Array } | undefined {
  if (frame.byteLength < BINARY_HEADER_BYTES) return undefined;
  const streamId = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0);
  return { streamId, payload: frame.subarray(BINARY_HEADER_BYTES) };
}
