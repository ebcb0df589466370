import type { Logger } from "pino";
import type { SessionInfo, SessionPhase, SessionStatus, SessionStopReason } from "@tether/shared";
import { DEFAULT_PROFILE } from "../config-profiles.js";
import { ErrorCodes } from "../errors.js";
import type { MetricsHooks } from "../metrics/hooks.js";
import type { SnapshotStore } from "../snapshots/snapshot-store.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import { ExecutionQueue, type ExecutionRequest, type ExecutionSink } from "./execution-queue.js";
import { SessionClocks } from "./session-clocks.js";
import { SessionEvents, type SessionEventLimits } from "./session-events.js";
import { SessionExecutions } from "./session-executions.js";
import { SessionFiles } from "./session-files.js";
import { adoptSession, detachSession, type HandoverHost } from "./session-handover.js";
import { describeSession } from "./session-info.js";
import { SessionLifecycle, phaseOf, statusOf } from "./session-lifecycle.js";
import { statusNotice } from "./session-observers.js";
import type { SessionReplication, SessionRestore } from "./session-replication.js";
import { SessionSnapshot } from "./session-snapshot.js";
import { SessionWorkerEvents } from "./session-worker-events.js";
import { SessionWorkers } from "./session-workers.js";
import { WorkerBackpressure } from "./worker-backpressure.js";
import { WorkerSupply, type WorkerSource, type WorkerSupplyDeps } from "./worker-supply.js";

export type { ExecutionRequest, ExecutionSink } from "./execution-queue.js";
export type { SessionObserver } from "./session-observers.js";

export interface SessionDeps extends WorkerSupplyDeps {
  logger: Logger;
  /** Event log and execution record budgets. */
  events: SessionEventLimits;
  interruptGraceMs: number;
  snapshots: SnapshotStore;
  /** Seconds without executions before the session scales to zero. */
  idleTimeoutS: number;
  /** Longest one worker serves the session before it is stopped (snapshotted). */
  maxLifetimeMs: number;
  /** Called once the session is deleted, failed its first start with nobody holding its id, or (`moved`) went to another replica. */
  onDisposed(session: Session, moved?: boolean): void;
  /** Name of the worker profile its workers run with; default `default`. */
  profile?: string;
  metrics?: MetricsHooks;
}

/**
 * One session: a facade over its lifecycle (session-lifecycle.ts), its
 * workers (session-workers.ts, session-worker-events.ts), its executions
 * (session-executions.ts), the clocks, the files and the observers. Workers
 * come and go (scale to zero, worker lost); the session and its workspace
 * files (through snapshots) stay. Every execution ends with exactly one
 * done, whatever happens to the worker.
 */
export class Session {
  createdAt = new Date();
  lastActivityAt = new Date();
  kernel: SessionInfo["kernel"];
  /** The workspace snapshot: summary, expiry, whether a resume found it gone. */
  readonly snapshots: SessionSnapshot;
  /** Why the session is (or last was) stopped. */
  stopReason: SessionStopReason | undefined;
  private readonly lifecycle: SessionLifecycle;
  private readonly queue: ExecutionQueue;
  private readonly executions: SessionExecutions;
  private readonly workers: SessionWorkers;
  private readonly workerEvents: SessionWorkerEvents;
  /** What a replica taking the session over, or letting it go, works with. */
  private readonly handover: HandoverHost;
  private readonly clocks: SessionClocks;
  /** Workspace files: list, delete, download, upload (a stopped session resumes first). */
  readonly files: SessionFiles;
  private readonly supply: WorkerSupply;
  /** What the session tells clients: the numbered event log, execution records, attached streams. */
  readonly events: SessionEvents;
  /**
   * Clients whose sockets are backed up hold the worker back; while it is not
   * read, the running execution's backstop does not count.
   */
  readonly backpressure: WorkerBackpressure;
  private deletion: Promise<void> | undefined;
  private readonly logger: Logger;
  /** The cluster layer, when there is one (TETHER_REDIS_URL). */
  private replication: SessionReplication | undefined;

  constructor(
    readonly id: string,
    readonly tenant: string,
    readonly metadata: Record<string, string>,
    private readonly deps: SessionDeps,
  ) {
    this.logger = deps.logger.child({ sessionId: id });
    this.events = new SessionEvents(deps.events);
    this.lifecycle = new SessionLifecycle({ name: "starting", kind: "create", phase: "queued" }, this.logger, (from, to, reason) => {
      deps.metrics?.sessionTransition(from.name, to.name);
      const notice = statusNotice(from, to, reason);
      if (notice) this.events.notice(notice);
      this.replication?.changed();
    });
    this.queue = new ExecutionQueue({
      logger: this.logger,
      interruptGraceMs: deps.interruptGraceMs,
      publish: (event, raw) => this.events.publish(event, raw),
      onBackstop: (requestId, backstopMs) => {
        const worker = this.lifecycle.worker;
        if (worker) this.workerEvents.lost(worker, ErrorCodes.WORKER_LOST, `The worker did not end execution '${requestId}' within ${backstopMs} ms.`);
      },
      onFinished: (execution) => this.executions.ended(execution),
      metrics: deps.metrics,
    });
    this.clocks = new SessionClocks({
      idleTimeoutS: deps.idleTimeoutS,
      maxLifetimeMs: deps.maxLifetimeMs,
      onIdle: () => {
        if (this.files.activeTransfers === 0) this.workers.suspend("idle_timeout", `No activity for ${deps.idleTimeoutS} s.`);
      },
      // Busy: the running execution finishes first (pump stops the session then).
      onLifetimeExpired: () => this.executions.pump(),
    });
    this.files = new SessionFiles({ serving: () => this.workers.serving(), touch: () => this.touch() });
    this.backpressure = new WorkerBackpressure(() => this.lifecycle.servingWorker, (held) => this.queue.pauseBackstop(held));
    this.supply = new WorkerSupply(id, deps, this.logger);
    this.snapshots = new SessionSnapshot(id);
    const parts = { id, logger: this.logger, lifecycle: this.lifecycle, queue: this.queue, events: this.events, clocks: this.clocks };
    this.workerEvents = new SessionWorkerEvents({ ...parts, stopped: (stop) => (this.stopReason = stop) });
    const serving = { ...parts, backpressure: this.backpressure, snapshot: this.snapshots, workerEvents: this.workerEvents };
    this.workers = new SessionWorkers({
      ...{ ...serving, supply: this.supply, snapshots: deps.snapshots },
      kernel: (kernel) => (this.kernel = kernel),
      stopped: (stop) => (this.stopReason = stop),
      resumed: (restoredFiles) => this.executions.resumed(restoredFiles),
      pump: () => this.executions.pump(),
      activeTransfers: () => this.files.activeTransfers,
      touch: () => this.touch(),
      disposed: () => deps.onDisposed(this),
    });
    this.executions = new SessionExecutions({
      ...{ ...parts, maxLifetimeMs: deps.maxLifetimeMs, replication: () => this.replication },
      assertNotEnded: () => this.workers.assertNotEnded(),
      servingNow: () => this.workers.servingNow(),
      wake: () => this.workers.wake(),
      touch: () => this.touch(),
      active: () => (this.lastActivityAt = new Date()),
      armIdle: () => this.workers.armIdle(),
      suspend: (kind, message) => this.workers.suspend(kind, message),
    });
    this.handover = { ...serving, served: () => this.workers.served(), disposed: () => deps.onDisposed(this, true) };
  }

  /** The client-visible status. */
  get state(): SessionStatus {
    return statusOf(this.lifecycle.current);
  }

  get phase(): SessionPhase {
    return phaseOf(this.lifecycle.current);
  }

  /** The worker serving the session, or starting for it. */
  get worker(): WorkerHandle | undefined {
    return this.lifecycle.worker;
  }

  /** Why the session failed, when it did. */
  get failure(): { code: string; message: string } | undefined {
    const state = this.lifecycle.current;
    return state.name === "failed" ? state.failure : undefined;
  }

  /**
   * Claims a pooled worker (`preferLaunchId` first: one another replica
   * claimed for this session), or a start slot, for the first start; throws
   * 429 over TETHER_MAX_CONCURRENT_STARTS.
   */
  reserveStart(preferLaunchId?: string): void {
    this.supply.reserve(preferLaunchId);
  }

  /** Where its current (or last) worker came from: the warm pool or a launch. */
  get workerSource(): WorkerSource | undefined {
    return this.supply.source;
  }

  /**
   * Starts the first worker; resolves once its kernel is ready, rejects with
   * 502/504 TetherErrors. Without `keepOnFailure` a failed session is
   * disposed (nobody else knows its id); with it, it stays `failed`.
   */
  start(options: { keepOnFailure?: boolean } = {}): Promise<void> {
    return this.workers.start(options.keepOnFailure ?? false);
  }

  /**
   * Refuses a client's requestId the session still keeps a record of
   * (queued, running, or ended within retention): a POST retried after a
   * dropped answer or a 503 must not run its code twice (the first may have
   * been queued, and run by the next owner). Checked before anything is stored.
   */
  assertNewRequestId(requestId: string): void {
    this.executions.assertNewRequestId(requestId);
  }

  /**
   * Queues an execution (while starting too: it runs once the kernel is
   * ready; on a stopped session it resumes it). Its events, ending with
   * exactly one done, go to `sink` and to every observer.
   */
  execute(request: ExecutionRequest, sink: ExecutionSink | undefined): void {
    this.executions.execute(request, sink);
  }

  inputReply(requestId: string, value: string): void {
    this.executions.inputReply(requestId, value);
  }

  /** Interrupts the running execution; a queued one named by `requestId` is cancelled instead. Nothing runs on a stopped session. */
  interrupt(requestId?: string): Promise<void> {
    return this.executions.interrupt(requestId);
  }

  /** Restarts the kernel (state is lost); resolves once the new kernel is idle. A stopped session gets a fresh kernel on resume anyway. */
  restart(): Promise<void> {
    return this.executions.restart();
  }

  private touch(): void {
    this.lastActivityAt = new Date();
    this.workers.armIdle();
  }

  /** Reports to the cluster layer from now on. */
  replicate(replication: SessionReplication): void {
    this.replication = replication;
  }

  /**
   * Continues a session another replica served (it died, or handed the
   * session over): its log and records, its state, and with a serving worker
   * the executions that worker runs and the ones queued behind.
   */
  adopt(restored: SessionRestore): void {
    ({ createdAt: this.createdAt, lastActivityAt: this.lastActivityAt, kernel: this.kernel, lastStop: this.stopReason } = restored);
    adoptSession(this.handover, restored);
  }

  /**
   * This replica lets the session go (it hands it over, or another replica
   * took it): the worker carries on without us, clients are told to
   * reconnect and waiting requests that it moved. Nothing is deleted.
   */
  detach(reason: string): void {
    detachSession(this.handover, reason);
  }

  /** Deletes the session: stops its worker, ends executions in flight with "cancelled", forgets its snapshot (unless `keepSnapshot`). Idempotent. */
  stop(reason: string, options: { keepSnapshot?: boolean } = {}): Promise<void> {
    this.deletion ??= this.delete(reason, options.keepSnapshot ?? false);
    return this.deletion;
  }

  /** Shutdown: an idle ready session scales to zero (its snapshot outlives this process), a running one stops its worker; snapshots are kept. */
  async release(reason: string): Promise<void> {
    const state = await this.suspendForShutdown(reason);
    if (state !== "stopped" && state !== "failed") await this.stop(reason, { keepSnapshot: true });
  }

  /** Shutdown: scales an idle ready session to zero and waits for its snapshot; anything else is left as it is. Returns the state after. */
  async suspendForShutdown(reason: string): Promise<SessionLifecycle["name"]> {
    this.workers.suspend("orchestrator_shutdown", reason);
    const state = this.lifecycle.current;
    if (state.name === "stopping") await state.settled;
    return this.lifecycle.name;
  }

  private async delete(reason: string, keepSnapshot: boolean): Promise<void> {
    this.clocks.clear();
    const previous = this.lifecycle.current;
    const worker = this.lifecycle.worker;
    this.lifecycle.to({ name: "deleted", reason }, reason);
    this.queue.endAll("cancelled", { code: ErrorCodes.SESSION_STOPPED, message: `The session was stopped: ${reason}` });
    this.events.observers.end("stopped", reason);
    try {
      await Promise.allSettled([worker?.stop(reason), this.supply.release(reason), previous.name === "stopping" ? previous.settled : undefined]);
      if (!keepSnapshot) await this.deps.snapshots.delete(this.id).catch((error: unknown) => this.logger.warn({ err: error }, "could not delete the snapshot"));
    } finally {
      this.deps.onDisposed(this);
    }
  }

  /** The worker profile its workers run with. */
  get profile(): string {
    return this.deps.profile ?? DEFAULT_PROFILE;
  }

  /** Seconds without activity before the session scales to zero. */
  get idleTimeoutS(): number {
    return this.clocks.idleTimeoutS;
  }

  info(): SessionInfo {
    return describeSession(this);
  }
}
