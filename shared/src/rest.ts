import { Type, type Static } from "@sinclair/typebox";
import { ExecutionFailure, ExecutionStatus, Metadata, MimeBundle } from "./execution.js";
import { FileEntry } from "./worker-protocol.js";

/** REST bodies of the client API (`/v1`). */

export const SessionStatus = Type.Union([
  Type.Literal("starting"),
  Type.Literal("ready"),
  Type.Literal("busy"),
  Type.Literal("stopped"),
  Type.Literal("failed"),
]);
export type SessionStatus = Static<typeof SessionStatus>;

export const CreateSessionBody = Type.Object(
  {
    /** Free-form labels echoed back (e.g. a chat id). */
    metadata: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 256 }), { maxProperties: 32 })),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

export const SessionInfo = Type.Object({
  id: Type.String(),
  status: SessionStatus,
  createdAt: Type.String(),
  lastActivityAt: Type.String(),
  metadata: Type.Record(Type.String(), Type.String()),
  kernel: Type.Optional(Type.Object({ name: Type.String(), language: Type.String(), languageVersion: Type.String() })),
  /** Why the session failed, when it did. */
  failure: Type.Optional(ExecutionFailure),
});
export type SessionInfo = Static<typeof SessionInfo>;

export const SessionList = Type.Object({ sessions: Type.Array(SessionInfo) });
export type SessionList = Static<typeof SessionList>;

export const ExecuteBody = Type.Object(
  {
    code: Type.String(),
    /** Execution timeout; default 60 s, capped by TETHER_MAX_EXEC_TIMEOUT_MS. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Lines answering input() prompts in order. Without it, input() fails at once. */
    stdin: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);
export type ExecuteBody = Static<typeof ExecuteBody>;

export const OutputItem = Type.Object({
  type: Type.Union([Type.Literal("display_data"), Type.Literal("execute_result")]),
  data: MimeBundle,
  metadata: Metadata,
  displayId: Type.Optional(Type.String()),
});
export type OutputItem = Static<typeof OutputItem>;

export const ExecuteResponse = Type.Object({
  requestId: Type.String(),
  status: ExecutionStatus,
  executionCount: Type.Union([Type.Integer(), Type.Null()]),
  stdout: Type.String(),
  stderr: Type.String(),
  outputs: Type.Array(OutputItem),
  error: Type.Optional(Type.Object({ name: Type.String(), value: Type.String(), traceback: Type.Array(Type.String()) })),
  /** stdout or stderr was cut at TETHER_MAX_OUTPUT_BYTES. */
  truncated: Type.Boolean(),
  kernelRestarted: Type.Boolean(),
  stateLost: Type.Boolean(),
  failure: Type.Optional(ExecutionFailure),
  durationMs: Type.Number(),
});
export type ExecuteResponse = Static<typeof ExecuteResponse>;

export const CallAck = Type.Object({ ok: Type.Literal(true) });

export const FileListResponse = Type.Object({
  files: Type.Array(FileEntry),
  /** More files exist than were listed. */
  truncated: Type.Boolean(),
});
export type FileListResponse = Static<typeof FileListResponse>;

export const ErrorResponse = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), hint: Type.Optional(Type.String()) }),
});
export type ErrorResponse = Static<typeof ErrorResponse>;
