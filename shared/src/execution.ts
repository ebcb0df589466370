import { Type, type Static } from "@sinclair/typebox";

/**
 * Execution events. The worker emits them, the orchestrator relays them to
 * websocket clients unchanged and folds them into REST responses. Each names
 * the `requestId` of the execute request it belongs to.
 */

export const RequestId = Type.String({ minLength: 1, maxLength: 128 });
export const MimeBundle = Type.Record(Type.String(), Type.Unknown(), {
  description: "Jupyter mime bundle: image/png as base64, text/html, image/svg+xml, text/plain, ...",
});
export const Metadata = Type.Record(Type.String(), Type.Unknown());

export const StreamEvent = Type.Object({
  type: Type.Literal("stream"),
  requestId: RequestId,
  name: Type.Union([Type.Literal("stdout"), Type.Literal("stderr")]),
  text: Type.String(),
});

/** display_data, or update_display_data when `update` is true (same `displayId`). */
export const DisplayEvent = Type.Object({
  type: Type.Literal("display"),
  requestId: RequestId,
  data: MimeBundle,
  metadata: Metadata,
  displayId: Type.Optional(Type.String()),
  update: Type.Boolean(),
});

export const ResultEvent = Type.Object({
  type: Type.Literal("result"),
  requestId: RequestId,
  executionCount: Type.Union([Type.Integer(), Type.Null()]),
  data: MimeBundle,
  metadata: Metadata,
});

/** A Python exception; `traceback` lines have their ANSI colour codes removed. */
export const ErrorEvent = Type.Object({
  type: Type.Literal("error"),
  requestId: RequestId,
  name: Type.String(),
  value: Type.String(),
  traceback: Type.Array(Type.String()),
});

/** Clear the request's output so far; with `wait`, only when the next output arrives. */
export const ClearOutputEvent = Type.Object({
  type: Type.Literal("clear_output"),
  requestId: RequestId,
  wait: Type.Boolean(),
});

export const InputRequestEvent = Type.Object({
  type: Type.Literal("input_request"),
  requestId: RequestId,
  prompt: Type.String(),
  password: Type.Boolean(),
});

export const ExecutionStatus = Type.Union([
  Type.Literal("ok"),
  Type.Literal("error"),
  Type.Literal("timeout"),
  Type.Literal("kernel_died"),
  Type.Literal("worker_lost"),
  Type.Literal("cancelled"),
]);
export type ExecutionStatus = Static<typeof ExecutionStatus>;

/** Why an execution ended without a Python result, when it did. */
export const ExecutionFailure = Type.Object({
  code: Type.String(),
  message: Type.String(),
});

/** The last event of every execution: it always comes, whatever happened. */
export const DoneEvent = Type.Object({
  type: Type.Literal("done"),
  requestId: RequestId,
  status: ExecutionStatus,
  executionCount: Type.Union([Type.Integer(), Type.Null()]),
  durationMs: Type.Number({ minimum: 0 }),
  /** The kernel was restarted while ending this execution (timeout that would not interrupt, or death). */
  kernelRestarted: Type.Boolean(),
  /** Variables and imports from earlier executions are gone. */
  stateLost: Type.Boolean(),
  failure: Type.Optional(ExecutionFailure),
});

export const KernelState = Type.Union([
  Type.Literal("starting"),
  Type.Literal("idle"),
  Type.Literal("busy"),
  Type.Literal("restarting"),
  Type.Literal("dead"),
  Type.Literal("queued"),
]);
export type KernelState = Static<typeof KernelState>;

/** Kernel or queue state; `requestId` is null when it concerns the whole session. */
export const StatusEvent = Type.Object({
  type: Type.Literal("status"),
  requestId: Type.Union([RequestId, Type.Null()]),
  state: KernelState,
});

/** The kernel process died (os._exit, segfault, OOM kill); state is lost. */
export const KernelDiedEvent = Type.Object({
  type: Type.Literal("kernel_died"),
  requestId: Type.Union([RequestId, Type.Null()]),
  reason: Type.String(),
  /** True once a fresh kernel is running in its place. */
  restarted: Type.Boolean(),
});

/** One union, nested whole in WorkerMessage and ServerMessage (MessageCodec flattens nested unions). */
export const ExecutionEvent = Type.Union([
  StreamEvent,
  DisplayEvent,
  ResultEvent,
  ErrorEvent,
  ClearOutputEvent,
  InputRequestEvent,
  StatusEvent,
  KernelDiedEvent,
  DoneEvent,
]);

export type StreamEvent = Static<typeof StreamEvent>;
export type DisplayEvent = Static<typeof DisplayEvent>;
export type ResultEvent = Static<typeof ResultEvent>;
export type ErrorEvent = Static<typeof ErrorEvent>;
export type ClearOutputEvent = Static<typeof ClearOutputEvent>;
export type InputRequestEvent = Static<typeof InputRequestEvent>;
export type DoneEvent = Static<typeof DoneEvent>;
export type StatusEvent = Static<typeof StatusEvent>;
export type KernelDiedEvent = Static<typeof KernelDiedEvent>;
export type ExecutionEvent = Static<typeof ExecutionEvent>;

/**
 * How `input()` is answered during one execution.
 * - `none`: the kernel gets `allow_stdin: false`, so input() fails at once with a readable error;
 * - `lines`: the worker answers prompts from `lines`, in order; one prompt too many ends the execution;
 * - `interactive`: prompts travel to the client as `input_request`, answered by `input_reply`.
 */
export const StdinMode = Type.Union([
  Type.Object({ mode: Type.Literal("none") }),
  Type.Object({ mode: Type.Literal("lines"), lines: Type.Array(Type.String()) }),
  Type.Object({ mode: Type.Literal("interactive") }),
]);
export type StdinMode = Static<typeof StdinMode>;
