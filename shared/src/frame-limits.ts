/**
 * Size limits both ends of the worker link agree on. A frame over the
 * receiver's limit cannot be delivered (the socket closes with 1009), and a
 * resumable link would retransmit it forever; so the worker never builds one:
 * it splits stream text and replaces an oversized rich output with a notice.
 */
const MiB = 1024 * 1024;

/** Largest JSON frame a worker sends; the orchestrator accepts twice this (the margin is for JSON escaping estimates). */
export const MAX_LINK_FRAME_BYTES = 32 * MiB;
/** What the orchestrator's worker sockets accept once the hello is verified. */
export const WORKER_MAX_PAYLOAD_BYTES = 2 * MAX_LINK_FRAME_BYTES;
/** What a worker socket may send before its hello is verified: the hello is a few hundred bytes. */
export const HELLO_MAX_PAYLOAD_BYTES = 64 * 1024;
/** Stream text travels in pieces of at most this many characters (a print of 70 MB becomes ~70 events). */
export const STREAM_CHUNK_CHARS = 1024 * 1024;
/** A display or result whose JSON is larger than this is replaced by a notice (TETHER_ERR_OUTPUT_TOO_LARGE). */
export const MAX_RICH_OUTPUT_BYTES = 24 * MiB;
