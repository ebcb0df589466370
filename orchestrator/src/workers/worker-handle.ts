import type { Readable } from "node:stream";
import type { OrchestratorMessage, SessionInfo, WorkerCallParams, WorkerCallResult, WorkerCallType } from "@tether/shared";
import type { ErrorCode } from "../errors.js";
import type { WorkerSessionMessage } from "./worker-connection.js";

/** `launching → connected → ready`, or `failed` before ready; `stopped` once stopped or lost. */
export type LaunchedWorkerState = "launching" | "connected" | "ready" | "failed" | "stopped";

export type KernelInfo = NonNullable<SessionInfo["kernel"]>;

/** What runs code on a worker: sent as is, answered by execution events. */
export type WorkerCommand = Extract<OrchestratorMessage, { type: "execute" | "input_reply" }>;

/** Whoever holds a worker (the warm pool while unclaimed, then one session) hears its progress and events. */
export interface WorkerListener {
  /** launching → connected → ready; lets a session show where its start is. */
  phase(state: "launching" | "connected" | "ready"): void;
  /** Execution events and the like, once the worker is ready. */
  message(message: WorkerSessionMessage, raw: Uint8Array): void;
  /** The worker is gone after ready (socket lost, process ended, worker_failed). Called once. */
  lost(code: ErrorCode, message: string): void;
}

/**
 * How far a session's replica got on its worker's link. In a cluster the
 * replica persists what the worker sent before acknowledging it, so a replica
 * taking over finds every frame either persisted or still in the worker's
 * replay buffer.
 */
export interface WorkerLinkProgress {
  readonly workerId: string;
  /** Last worker frame delivered (its effects are in the session). */
  readonly delivered: number;
  /** The resume token's digest, for the shared store. */
  readonly resumeDigest: string | undefined;
  /** From now on acknowledge only what confirm() releases. */
  deferAcks(): void;
  confirm(seq: number): void;
}

/**
 * A worker as the session core sees it: one launch, from start to stop. The
 * socket underneath is the worker domain's business; a session only sends
 * commands, makes typed calls and moves files.
 */
export interface WorkerHandle {
  readonly launchId: string;
  /** Set once the worker joined (its connection's id). */
  readonly workerId: string | undefined;
  readonly state: LaunchedWorkerState;
  readonly kernel: KernelInfo | undefined;
  /** Resolves once the kernel is ready (and a pool preload ran); rejects with a 502/504 TetherError. */
  readonly ready: Promise<void>;
  /** Set when ready: ms from launch to ready. */
  readonly startMs: number | undefined;
  /** Ready with its connection open (a dropped link held for a resume counts: what is sent waits for it). */
  readonly serving: boolean;
  /** Starts the launch; the outcome comes through `ready`. */
  start(): void;
  setListener(listener: WorkerListener | undefined): void;
  /** False when the worker is not connected. */
  send(command: WorkerCommand): boolean;
  call<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>, timeoutMs: number): Promise<WorkerCallResult<T>>;
  download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }>;
  upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<WorkerCallResult<"file_upload">>;
  /** Stops reading the worker until every pauser resumed (client backpressure). */
  pause(pauser: object): void;
  resume(pauser: object): void;
  /** Shuts the worker down and waits for its launch to end. Idempotent. */
  stop(reason: string): Promise<void>;
  /** The link's progress while connected (cluster persistence); undefined before the worker joined or once it is gone. */
  linkProgress(): WorkerLinkProgress | undefined;
  /**
   * Lets the worker go on without this replica: its link is closed as
   * "moved" (it resumes through the balancer at the session's next owner)
   * and its launch is released, not stopped.
   */
  handOver(reason: string): void;
}
