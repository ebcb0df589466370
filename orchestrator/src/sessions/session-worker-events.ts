import type { Logger } from "pino";
import type { ExecutionEvent, SessionStopReason } from "@tether/shared";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import type { WorkerSessionMessage } from "../workers/worker-connection.js";
import type { WorkerHandle, WorkerListener } from "../workers/worker-handle.js";
import type { ExecutionQueue } from "./execution-queue.js";
import type { SessionClocks } from "./session-clocks.js";
import type { SessionEvents } from "./session-events.js";
import type { SessionLifecycle } from "./session-lifecycle.js";

export interface SessionWorkerEventsDeps {
  logger: Logger;
  lifecycle: SessionLifecycle;
  queue: ExecutionQueue;
  events: SessionEvents;
  clocks: SessionClocks;
  /** The worker was lost: why the session is stopped now. */
  stopped(stop: SessionStopReason): void;
}

/**
 * What the session's worker says, and its loss. Only the worker serving the
 * session (or starting for it) is heard: events of any other are ignored.
 */
export class SessionWorkerEvents {
  constructor(private readonly deps: SessionWorkerEventsDeps) {}

  /** The listener for a worker that serves the session already (adopted: there is no start to follow). */
  listenerFor(worker: WorkerHandle): WorkerListener {
    return { phase: () => undefined, message: (message, raw) => this.message(worker, message, raw), lost: (code, message) => this.lost(worker, code, message) };
  }

  message(worker: WorkerHandle, message: WorkerSessionMessage, raw: Uint8Array): void {
    if (worker !== this.deps.lifecycle.worker) return;
    switch (message.type) {
      case "worker_ready":
      case "worker_failed":
        return; // the launched worker handles both
      case "protocol_error":
        this.deps.logger.warn({ code: message.code, message: message.message, requestId: message.requestId }, "the worker refused a frame");
        return;
      default:
        this.route(message, raw);
    }
  }

  /** The worker is gone after ready: every execution ends worker_lost; the session stops, resumable. */
  lost(worker: WorkerHandle, _code: ErrorCode, message: string): void {
    const { lifecycle, clocks, logger, queue } = this.deps;
    const state = lifecycle.current;
    // While starting, the start in progress notices and fails (or retries) itself.
    if (worker !== lifecycle.worker || state.name === "starting") return;
    clocks.clear();
    logger.warn({ launchId: worker.launchId, reason: message }, "the session's worker was lost");
    const stop: SessionStopReason = { kind: "worker_lost", message, at: new Date().toISOString() };
    this.deps.stopped(stop);
    lifecycle.to({ name: "stopped", stop }, message);
    queue.endAll("worker_lost", { code: ErrorCodes.WORKER_LOST, message });
    void worker.stop(message);
  }

  private route(event: ExecutionEvent, raw: Uint8Array): void {
    if (event.requestId === null) this.deps.events.publish(event, raw);
    else this.deps.queue.route(event, event.requestId, raw);
  }
}
