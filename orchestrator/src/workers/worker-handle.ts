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
 * A worker as the session core sees it: one launch, from start to stop. The
 * socket underneath is the worker domain's business; a session only sends
 * commands, makes typed calls and moves files.
 */
export interface WorkerHandle {
  readonly launchId: string;
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
}
