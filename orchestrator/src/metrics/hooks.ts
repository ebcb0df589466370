/**
 * What the core tells metrics: named calls with plain values. The core
 * (sessions/, workers/, routes/) imports this file's types only and metrics/
 * never imports the core, so the hooks add no dependency between them. Every
 * hook is cheap (a few additions) and never throws; each is optional for the
 * caller (`deps.metrics?.hook(...)`), so code built without metrics runs as before.
 */
export interface MetricsHooks {
  /** A worker launch ended its start: ready, or failed with `failureCode` (a TETHER_ERR_* code). */
  workerStartEnded(start: WorkerStartReport): void;
  /** A worker that was ready went away without being asked to (socket lost, process ended, worker_failed). */
  workerLost(): void;
  /** An execution ended with its one done; `durationMs` from sending it to the worker to the done, undefined when it never ran. */
  executionFinished(status: string, durationMs: number | undefined): void;
  /** A session moved between lifecycle states (session-lifecycle.ts names). */
  sessionTransition(from: string, to: string): void;
  /** One frame was handed to a websocket client's socket. */
  clientFrameSent(bytes: number): void;
  /** A websocket client backed up past TETHER_SLOW_CLIENT_TIMEOUT_MS was disconnected (1013). */
  slowClientDisconnected(): void;
}

export interface WorkerStartReport {
  /** The worker profile the launch ran with. */
  profile: string;
  /** Launched for the warm pool (true) or for a session (false). */
  pooled: boolean;
  /** From the launcher call to ready (or to the failure). */
  durationMs: number;
  /** Undefined when the worker became ready. */
  failureCode?: string;
}
