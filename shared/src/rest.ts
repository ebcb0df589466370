import { Type, type Static } from "@sinclair/typebox";
import { ExecutionFailure, ExecutionStatus, Metadata, MimeBundle, RequestId } from "./execution.js";
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

/**
 * Where a session is, finer than its status. A start (or a resume) goes
 * `queued → launching → connected → (restoring →) ready`; scale to zero goes
 * `stopping → stopped`; `failed` when the first start failed.
 */
export const SessionPhase = Type.Union([
  /** Waiting for a start slot (TETHER_MAX_CONCURRENT_STARTS). */
  Type.Literal("queued"),
  /** The launcher is starting the worker; it has not dialed back yet. */
  Type.Literal("launching"),
  /** The worker dialed back; its Jupyter kernel is starting. */
  Type.Literal("connected"),
  /** Resuming: the workspace files of the last snapshot are being copied to the new worker. */
  Type.Literal("restoring"),
  Type.Literal("ready"),
  /** Scaling to zero: the workspace is being snapshotted and the worker stopped. */
  Type.Literal("stopping"),
  Type.Literal("stopped"),
  Type.Literal("failed"),
]);
export type SessionPhase = Static<typeof SessionPhase>;

/** Why a session stopped; the next execute resumes it on a new worker either way. */
export const SessionStopReason = Type.Object({
  kind: Type.Union([
    Type.Literal("idle_timeout"),
    Type.Literal("max_lifetime"),
    Type.Literal("worker_lost"),
    Type.Literal("resume_failed"),
    /** The orchestrator shut down: the workspace was snapshotted (it outlives the process), the worker stopped. */
    Type.Literal("orchestrator_shutdown"),
  ]),
  message: Type.String(),
  at: Type.String(),
  /**
   * True when the workspace could not be snapshotted on the way to `stopped`
   * (the store failed, or a shutdown's time ran out): files written since the
   * previous snapshot are gone; the message says why. Absent otherwise.
   */
  filesLost: Type.Optional(Type.Literal(true)),
});
export type SessionStopReason = Static<typeof SessionStopReason>;

/** Longest per-session idle timeout accepted (7 days). */
export const MAX_IDLE_TIMEOUT_S = 7 * 24 * 3600;

export const CreateSessionBody = Type.Object(
  {
    /** Free-form labels echoed back (e.g. a chat id). */
    metadata: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 256 }), { maxProperties: 32 })),
    /**
     * true (default): answer 201 once the kernel is ready. false: answer 202 at once
     * (status `starting`) and follow the phases on the websocket or GET /v1/sessions/:id.
     */
    wait: Type.Optional(Type.Boolean()),
    /** Seconds without executions before the session scales to zero; default TETHER_IDLE_TIMEOUT_S. */
    idleTimeoutS: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_IDLE_TIMEOUT_S })),
    /**
     * A worker profile the orchestrator is configured with (TETHER_PROFILES): the
     * image, CPU, memory, GPU its workers get. Default `default`; an unknown one is
     * 400 TETHER_ERR_PROFILE_UNKNOWN. Only `default` workers come from the warm pool.
     */
    profile: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
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
  phase: SessionPhase,
  /** Seconds without executions before the session scales to zero. */
  idleTimeoutS: Type.Integer(),
  /** Why the session is (or last was) stopped. */
  stopReason: Type.Optional(SessionStopReason),
  /** The last workspace snapshot, when one was taken. */
  snapshot: Type.Optional(
    Type.Object({
      files: Type.Integer(),
      bytes: Type.Integer(),
      savedAt: Type.String(),
      /** When the expiry sweep deletes it (TETHER_SNAPSHOT_TTL_S); absent when snapshots never expire. */
      expiresAt: Type.Optional(Type.String()),
      /**
       * Set once a resume found this snapshot gone (its files were not restored): `expired`
       * (older than TETHER_SNAPSHOT_TTL_S, TETHER_ERR_SNAPSHOT_EXPIRED) or `missing`
       * (no longer in the store, TETHER_ERR_SNAPSHOT_MISSING).
       */
      lost: Type.Optional(Type.Union([Type.Literal("expired"), Type.Literal("missing")])),
    }),
  ),
  /** The worker profile the session's workers run with (`default` unless the create named one). */
  profile: Type.String(),
  /**
   * Where the session's current (or last) worker came from: `pool`, a warm-pool worker
   * started before the session (a warm start, on any replica of a cluster), or `launch`,
   * one launched for it (a cold start). Absent before the first worker is obtained.
   */
  workerSource: Type.Optional(Type.Union([Type.Literal("pool"), Type.Literal("launch")])),
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
    /**
     * false: answer 202 at once with the requestId, and follow the execution with
     * GET /v1/sessions/:id/executions/:requestId (or the stream). Default true:
     * answer when it is done.
     */
    wait: Type.Optional(Type.Boolean()),
    /**
     * Your own id for this execution (default: one is made up), so that a client whose
     * request dropped can ask for its result: GET /v1/sessions/:id/executions/:requestId.
     */
    requestId: Type.Optional(RequestId),
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
  /**
   * The session had stopped (idle, max lifetime, worker lost) and this execution
   * resumed it on a new worker: files came back from the snapshot, variables did not
   * (`stateLost` is then true).
   */
  resumed: Type.Boolean(),
});
export type ExecuteResponse = Static<typeof ExecuteResponse>;

/** An execution's state: waiting its turn, running, or ended (a done status). */
export const ExecutionState = Type.Union([Type.Literal("queued"), Type.Literal("running"), ExecutionStatus]);
export type ExecutionState = Static<typeof ExecutionState>;

/**
 * `GET /v1/sessions/:id/executions/:requestId`: the body a synchronous execute
 * answers with, with `status` `queued` or `running` until it ends.
 */
export const ExecutionView = Type.Composite([Type.Omit(ExecuteResponse, ["status"]), Type.Object({ status: ExecutionState })]);
export type ExecutionView = Static<typeof ExecutionView>;

/** `POST .../execute` with `"wait": false`: accepted (202). */
export const ExecutionAccepted = Type.Object({
  requestId: Type.String(),
  status: ExecutionState,
});
export type ExecutionAccepted = Static<typeof ExecutionAccepted>;

export const ExecutionSummary = Type.Object({
  requestId: Type.String(),
  status: ExecutionState,
  createdAt: Type.String(),
  startedAt: Type.Optional(Type.String()),
  doneAt: Type.Optional(Type.String()),
});
export type ExecutionSummary = Static<typeof ExecutionSummary>;

/** `GET /v1/sessions/:id/executions`: recent executions, newest first. */
export const ExecutionList = Type.Object({ executions: Type.Array(ExecutionSummary) });
export type ExecutionList = Static<typeof ExecutionList>;

/** `GET /v1/pool`: the warm pool of workers dialed in with a kernel, not yet bound to a session. */
export const PoolStatus = Type.Object({
  /** TETHER_POOL_SIZE. */
  target: Type.Integer(),
  /** Workers with a ready kernel (and preload run), claimable at once. */
  ready: Type.Integer(),
  /** Workers launching, connecting or running the preload. */
  starting: Type.Integer(),
  /** With TETHER_REDIS_URL: idle (ready, unclaimed) pool workers of every live replica, which any replica's creates may use. */
  cluster: Type.Optional(
    Type.Object({
      /** The replica that answered. */
      replicaId: Type.String(),
      /** Idle pool workers across the cluster. */
      idle: Type.Integer(),
      replicas: Type.Array(Type.Object({ replicaId: Type.String(), idle: Type.Integer(), draining: Type.Boolean() })),
    }),
  ),
});
export type PoolStatus = Static<typeof PoolStatus>;

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
