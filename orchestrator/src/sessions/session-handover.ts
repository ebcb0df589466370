import type { ExecutionQueue } from "./execution-queue.js";
import type { SessionClocks } from "./session-clocks.js";
import type { SessionEvents } from "./session-events.js";
import type { SessionLifecycle } from "./session-lifecycle.js";
import type { SessionRestore } from "./session-replication.js";
import type { SessionSnapshot } from "./session-snapshot.js";
import type { SessionWorkerEvents } from "./session-worker-events.js";
import type { WorkerBackpressure } from "./worker-backpressure.js";

/** What moving a session between replicas needs of it. */
export interface HandoverHost {
  readonly lifecycle: SessionLifecycle;
  readonly queue: ExecutionQueue;
  readonly events: SessionEvents;
  readonly clocks: SessionClocks;
  readonly backpressure: WorkerBackpressure;
  readonly snapshot: SessionSnapshot;
  readonly workerEvents: SessionWorkerEvents;
  /** A worker serves the session from now on: its lifetime starts, queued executions go out, the idle clock runs. */
  served(): void;
  /** This replica is done with the session (it moved). */
  disposed(): void;
}

/**
 * Continues a session another replica served (it died, or handed the
 * session over): its log and records, its state, and with a serving worker
 * the executions that worker runs and the ones queued behind. The session's
 * own fields (created, last active, kernel, last stop) are the caller's.
 */
export function adoptSession(host: HandoverHost, restored: SessionRestore): void {
  const { lifecycle, queue } = host;
  host.snapshot.adopt(restored.snapshot);
  host.events.restore(restored.events, restored.lastSeq, restored.executions);
  const state = restored.state;
  if (state.kind === "stopped") return lifecycle.adopt({ name: "stopped", stop: state.stop });
  if (state.kind === "failed") return lifecycle.adopt({ name: "failed", failure: state.failure });
  const worker = state.worker;
  worker.setListener(host.workerEvents.listenerFor(worker));
  lifecycle.adopt({ name: state.running ? "busy" : "ready", worker });
  if (state.running) queue.adoptRunning(state.running);
  for (const request of state.queued) queue.add(request, undefined);
  host.backpressure.applyTo(worker);
  host.served();
}

/**
 * This replica lets the session go (it hands it over, or another replica
 * took it): the worker carries on without us, clients are told to
 * reconnect and waiting requests that it moved. Nothing is deleted.
 */
export function detachSession(host: HandoverHost, reason: string): void {
  const { lifecycle } = host;
  if (lifecycle.name === "deleted") return;
  host.clocks.clear();
  host.queue.disarm();
  const worker = lifecycle.worker;
  lifecycle.to({ name: "deleted", reason }, reason);
  if (worker?.state === "ready") worker.handOver(reason);
  else void worker?.stop(reason);
  host.events.records.abandonAll();
  host.events.observers.end("moved", reason);
  host.disposed();
}
