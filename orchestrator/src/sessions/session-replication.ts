import type { SessionInfo, SessionStopReason } from "@tether/shared";
import type { WorkerHandle } from "../workers/worker-handle.js";
import type { LoggedEvent } from "./event-log.js";
import type { ExecutionRequest } from "./execution-queue.js";
import type { RestoredExecution } from "./session-events.js";

/**
 * What a session tells the cluster layer (cluster/), when there is one: the
 * session core stays free of stores and replicas, and a single orchestrator
 * runs without any of it.
 */
export interface SessionReplication {
  /** Something its record shows changed (status, phase, worker, kernel, snapshot, stop reason): rewrite it. */
  changed(): void;
  /** An execution was queued, sent to the worker, or ended. */
  execution(request: ExecutionRequest, state: RestoredExecution["state"]): void;
}

/** Where the session was when its previous replica let it go. */
export type AdoptedState =
  /** Scaled to zero (or its worker was lost): resumes from its snapshot on the next execute. */
  | { kind: "stopped"; stop: SessionStopReason }
  /** Its first start failed: terminal but for delete. */
  | { kind: "failed"; failure: { code: string; message: string } }
  /** A worker serves it: `worker` waits for that worker to resume its link here. */
  | { kind: "serving"; worker: WorkerHandle; running: ExecutionRequest | undefined; queued: readonly ExecutionRequest[] };

/** Everything a replica taking a session over restores into it. */
export interface SessionRestore {
  createdAt: Date;
  lastActivityAt: Date;
  kernel: SessionInfo["kernel"];
  snapshot: SessionInfo["snapshot"];
  lastStop: SessionStopReason | undefined;
  events: readonly LoggedEvent[];
  lastSeq: number;
  executions: readonly RestoredExecution[];
  state: AdoptedState;
}
