import { Type, type Static } from "@sinclair/typebox";
import { ExecutionEvent, RequestId, StdinMode } from "./execution.js";

/**
 * Orchestrator <-> worker protocol, over the websocket the worker dials.
 * JSON text frames for messages; binary frames (see binary-frame.ts) carry
 * file bytes, tagged with the `streamId` a JSON message opened.
 *
 * Since 1.1, when the worker advertises the `resume` capability and welcome
 * carries a `resumeToken`, every later JSON frame in either direction is
 * sequenced: it starts with `{"seq":N,` (N = 1, 2, 3, ... per direction,
 * the first member of the object) — except `ack`, `resume` and `resumed`,
 * which are link control. Binary frames are not sequenced: byte streams do
 * not survive a reconnect. See reliable-link.ts.
 */

export const CallId = Type.String({ minLength: 1, maxLength: 128 });
export const StreamId = Type.Integer({ minimum: 1, maximum: 0xffffffff });

export const ErrorDetail = Type.Object({
  code: Type.String(),
  message: Type.String(),
});
export type ErrorDetail = Static<typeof ErrorDetail>;

export const FileEntry = Type.Object({
  /** Workspace-relative, '/'-separated. */
  path: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  modifiedAt: Type.String({ description: "ISO 8601" }),
});
export type FileEntry = Static<typeof FileEntry>;

// ---- worker -> orchestrator -------------------------------------------------

/** First frame on every worker connection. */
export const WorkerHello = Type.Object({
  type: Type.Literal("hello"),
  protocolVersion: Type.String(),
  agentVersion: Type.String(),
  /** The single-use join token from TETHER_JOIN_TOKEN. */
  token: Type.String({ minLength: 1, maxLength: 512 }),
  capabilities: Type.Array(Type.String()),
});

/** The kernel is up and takes executions. Timings let the orchestrator show where a start spent its time. */
export const WorkerReady = Type.Object({
  type: Type.Literal("worker_ready"),
  kernel: Type.Object({
    name: Type.String(),
    language: Type.String(),
    languageVersion: Type.String(),
  }),
  timings: Type.Object({
    processStartMs: Type.Number(),
    jupyterReadyMs: Type.Number(),
    kernelReadyMs: Type.Number(),
  }),
});

/** The worker could not get a kernel up; the session fails with this reason. */
export const WorkerFailed = Type.Object({
  type: Type.Literal("worker_failed"),
  error: ErrorDetail,
});

export const CallResult = Type.Union([
  Type.Object({ type: Type.Literal("call_result"), callId: CallId, ok: Type.Literal(true), value: Type.Unknown() }),
  Type.Object({ type: Type.Literal("call_result"), callId: CallId, ok: Type.Literal(false), error: ErrorDetail }),
]);

/** Credit for a byte stream: the receiver has consumed `bytes` more bytes of `streamId`. */
export const StreamAck = Type.Object({
  type: Type.Literal("stream_ack"),
  streamId: StreamId,
  bytes: Type.Integer({ minimum: 0 }),
});

/** The sender has sent every byte of `streamId`, or gives up with `error`. */
export const StreamEnd = Type.Object({
  type: Type.Literal("stream_end"),
  streamId: StreamId,
  error: Type.Optional(ErrorDetail),
});

/**
 * Cumulative acknowledgement (both directions, never sequenced itself): the
 * sender has delivered every sequenced frame up to and including `seq`; the
 * peer may drop them from its replay buffer.
 */
export const LinkAck = Type.Object({
  type: Type.Literal("ack"),
  seq: Type.Integer({ minimum: 0 }),
});

/**
 * First frame of a reconnect (instead of hello): the worker whose link
 * dropped resumes its place. `lastSeqReceived` is the last orchestrator frame
 * it delivered; the orchestrator retransmits everything after it.
 */
export const WorkerResume = Type.Object({
  type: Type.Literal("resume"),
  protocolVersion: Type.String(),
  workerId: Type.String({ minLength: 1, maxLength: 128 }),
  /** From welcome, or from the last resumed: single-use, rotated on each resume. */
  resumeToken: Type.String({ minLength: 1, maxLength: 512 }),
  lastSeqReceived: Type.Integer({ minimum: 0 }),
});

/** A frame the worker could not accept. */
export const WorkerProtocolError = Type.Object({
  type: Type.Literal("protocol_error"),
  requestId: Type.Union([Type.String(), Type.Null()]),
  code: Type.String(),
  message: Type.String(),
});

export const WorkerMessage = Type.Union([
  WorkerHello,
  WorkerReady,
  WorkerFailed,
  ExecutionEvent,
  CallResult,
  StreamAck,
  StreamEnd,
  WorkerProtocolError,
  LinkAck,
  WorkerResume,
]);
export type WorkerMessage = Static<typeof WorkerMessage>;
export type LinkAck = Static<typeof LinkAck>;
export type WorkerResume = Static<typeof WorkerResume>;
export type WorkerHello = Static<typeof WorkerHello>;
export type WorkerReady = Static<typeof WorkerReady>;
export type CallResult = Static<typeof CallResult>;

// ---- orchestrator -> worker -------------------------------------------------

/** Answer to a valid hello: the worker is bound to a session. */
export const Welcome = Type.Object({
  type: Type.Literal("welcome"),
  workerId: Type.String(),
  sessionId: Type.Union([Type.String(), Type.Null()]),
  /** The orchestrator pings this often; silence for 3 intervals means it is gone. */
  heartbeatIntervalMs: Type.Integer({ minimum: 100 }),
  /**
   * Since 1.1, only to a worker advertising `resume`: the credential to
   * reconnect with after a drop (never the spent join token). From here on
   * both directions are sequenced.
   */
  resumeToken: Type.Optional(Type.String()),
});

/**
 * Answer to a valid resume: the link is back. `lastSeqReceived` is the last
 * worker frame the orchestrator delivered; the worker retransmits everything
 * after it. `resumeToken` replaces the one just used.
 */
export const Resumed = Type.Object({
  type: Type.Literal("resumed"),
  /** The token for the next resume; absent: keep the one you have (a cluster keeps it for the worker's life). */
  resumeToken: Type.Optional(Type.String()),
  lastSeqReceived: Type.Integer({ minimum: 0 }),
});

export const WorkerExecute = Type.Object({
  type: Type.Literal("execute"),
  requestId: RequestId,
  code: Type.String(),
  timeoutMs: Type.Integer({ minimum: 1 }),
  stdin: StdinMode,
});

export const WorkerInputReply = Type.Object({
  type: Type.Literal("input_reply"),
  requestId: RequestId,
  value: Type.String(),
});

/** Interrupt whatever runs; answered by call_result. */
export const WorkerInterrupt = Type.Object({ type: Type.Literal("interrupt"), callId: CallId });
/** Restart the kernel (state is lost); answered by call_result once the new kernel is idle. */
export const WorkerRestart = Type.Object({ type: Type.Literal("restart"), callId: CallId });
/**
 * Which executions the worker has: running, queued, recently ended; answered
 * by call_result. A replica that took the worker over after its owner died
 * asks, to re-send an execute the worker never got.
 */
export const ExecutionsStatus = Type.Object({ type: Type.Literal("executions_status"), callId: CallId });
/** List workspace files; answered by call_result with `{ files: FileEntry[], truncated }`. */
export const FilesList = Type.Object({ type: Type.Literal("files_list"), callId: CallId });
export const FileDelete = Type.Object({ type: Type.Literal("file_delete"), callId: CallId, path: Type.String() });
/**
 * Send a file: the worker answers call_result `{ size }` (or an error), then
 * binary frames on `streamId`, then stream_end; the orchestrator acks bytes.
 */
export const FileDownload = Type.Object({
  type: Type.Literal("file_download"),
  callId: CallId,
  path: Type.String(),
  streamId: StreamId,
});
/**
 * Receive a file: the orchestrator sends binary frames on `streamId`, then
 * stream_end; the worker acks bytes as written and answers call_result
 * `{ size }` once the file is complete on disk.
 */
export const FileUpload = Type.Object({
  type: Type.Literal("file_upload"),
  callId: CallId,
  path: Type.String(),
  streamId: StreamId,
});
/** Stop: shut the kernel and Jupyter Server down and exit. */
export const Shutdown = Type.Object({ type: Type.Literal("shutdown"), reason: Type.String() });

/** Sent instead of welcome (or resumed) when the hello (or resume) is refused; the socket then closes. */
export const JoinRefused = Type.Object({
  type: Type.Literal("join_refused"),
  code: Type.String(),
  message: Type.String(),
});

export const OrchestratorMessage = Type.Union([
  Welcome,
  JoinRefused,
  WorkerExecute,
  WorkerInputReply,
  WorkerInterrupt,
  WorkerRestart,
  ExecutionsStatus,
  FilesList,
  FileDelete,
  FileDownload,
  FileUpload,
  StreamAck,
  StreamEnd,
  Shutdown,
  WorkerProtocolError,
  LinkAck,
  Resumed,
]);
export type OrchestratorMessage = Static<typeof OrchestratorMessage>;
export type Resumed = Static<typeof Resumed>;
export type Welcome = Static<typeof Welcome>;
export type WorkerExecute = Static<typeof WorkerExecute>;

/**
 * The orchestrator replica hands the worker to another one (it is shutting
 * down, or lost the session's ownership): not final, the worker resumes its
 * link through TETHER_ORCHESTRATOR_URL (the balancer), where the session's
 * new owner takes it. 1012 is the standard "service restart".
 */
export const WORKER_MOVED_CLOSE_CODE = 1012;

/** Websocket close codes on the worker channel (4000-4999 are application codes). */
export const WorkerCloseCodes = {
  joinRefused: 4401,
  versionUnsupported: 4426,
  helloTimeout: 4408,
  replaced: 4409,
  shutdown: 4000,
} as const;
