import type { Logger } from "pino";
import { ErrorCodes, TetherError } from "../errors.js";
import type { LoggedEvent } from "../sessions/event-log.js";
import type { ExecutionRequest } from "../sessions/execution-queue.js";
import type { EventJournal, RestoredExecution } from "../sessions/session-events.js";
import type { SessionReplication } from "../sessions/session-replication.js";
import type { Session } from "../sessions/session.js";
import { FencedError, type ClusterStore, type Lease, type SessionRecord, type StoredExecution, type WorkerWatermark } from "../store/cluster-store.js";

export interface ReplicatedSessionDeps {
  store: ClusterStore;
  replicaId: string;
  logger: Logger;
  /** How long a launch's routing entry lives (a worker may resume through any replica meanwhile). */
  launchTtlMs: number;
  /** A write was fenced: another replica owns the session now. Let it go here. */
  onFenced(session: Session): void;
}

/** Retries of a failed write back off up to this. */
const MAX_RETRY_DELAY_MS = 2000;

/**
 * One session's replication, on its owner: its record (what every replica
 * lists and adopts from), its executions with their code while not ended,
 * and its events, each persisted before clients see it. The worker's frames
 * are acknowledged only once their effects are persisted: a replica taking
 * over finds every frame either in the store or still in the worker's replay
 * buffer. Every write carries the lease; a fenced one means another replica
 * took the session, and this one lets it go.
 */
export class ReplicatedSession implements SessionReplication, EventJournal {
  private pending: LoggedEvent[] = [];
  private flushing: Promise<void> | undefined;
  private flushQueued = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  /** The last watermark persisted. */
  private watermark: WorkerWatermark | undefined;
  /** The record changed since it was last written (it goes with the next flush). */
  private recordDirty = false;
  /** The worker whose acks wait for persistence (deferred once per worker). */
  private deferredFor: string | undefined;
  private routedLaunch: string | undefined;
  /** Executions not yet in the store as they are now (retried with the next flush). */
  private readonly unsynced = new Map<string, StoredExecution>();
  private readonly createdAt = new Map<string, string>();
  private fenced = false;
  private readonly logger: Logger;

  constructor(
    readonly session: Session,
    readonly lease: Lease,
    private readonly deps: ReplicatedSessionDeps,
  ) {
    this.logger = deps.logger.child({ sessionId: session.id, epoch: lease.epoch });
  }

  /** Starts replicating: from here on clients see an event once it is persisted. */
  attach(): void {
    this.session.replicate(this);
    this.session.events.persistWith(this);
    this.changed();
  }

  /** The record as other replicas see it. */
  record(): SessionRecord {
    const worker = this.session.worker;
    const workerId = worker?.state === "ready" ? worker.workerId : undefined;
    return { info: this.session.info(), tenant: this.session.tenant, ...(worker && workerId ? { worker: { workerId, launchId: worker.launchId } } : {}) };
  }

  changed(): void {
    const worker = this.session.worker;
    const link = worker?.linkProgress();
    if (worker && link) {
      if (link.workerId !== this.deferredFor) {
        link.deferAcks();
        this.deferredFor = link.workerId;
      }
      if (worker.launchId !== this.routedLaunch) {
        // The worker's resumes route to this session's owner (a pool worker's launch said "pool" until now).
        this.routedLaunch = worker.launchId;
        this.deps.store.putLaunch(worker.launchId, { sessionId: this.session.id, replicaId: this.deps.replicaId }, this.deps.launchTtlMs).catch((error: unknown) => this.failed(error, "launch route"));
      }
    }
    this.recordDirty = true;
    this.schedule();
  }

  execution(request: ExecutionRequest, state: RestoredExecution["state"]): void {
    const createdAt = this.createdAt.get(request.requestId) ?? new Date().toISOString();
    if (state === "ended") this.createdAt.delete(request.requestId);
    else this.createdAt.set(request.requestId, createdAt);
    const stored: StoredExecution =
      state === "ended"
        ? { requestId: request.requestId, state, createdAt }
        : { requestId: request.requestId, state, createdAt, code: request.code, timeoutMs: request.timeoutMs, stdin: request.stdin };
    this.unsynced.set(request.requestId, stored);
    this.schedule();
  }

  /**
   * Persists a queued execution before it is accepted: once the caller hears
   * "accepted", a replica taking over runs it. Fenced (the lease is another's,
   * or was released by a hand-over) lets the session go here and rejects with
   * FencedError: nothing was queued.
   */
  async persistQueued(request: ExecutionRequest): Promise<void> {
    const createdAt = new Date().toISOString();
    this.createdAt.set(request.requestId, createdAt);
    try {
      await this.write(() => this.deps.store.putExecution(this.session.id, { requestId: request.requestId, state: "queued", createdAt, code: request.code, timeoutMs: request.timeoutMs, stdin: request.stdin }, this.lease));
    } catch (error) {
      this.createdAt.delete(request.requestId);
      if (error instanceof FencedError) this.failed(error, "queued execution");
      throw error;
    }
  }

  append(event: LoggedEvent): void {
    this.pending.push(event);
    this.schedule();
  }

  /** Called now and then: frames that made no event (call results, status) still move the watermark, and their acks. */
  tick(): void {
    const link = this.session.worker?.linkProgress();
    if (link && (link.workerId !== this.watermark?.workerId || link.delivered > this.watermark.seq)) this.schedule();
  }

  /**
   * Resolves once everything so far is persisted (a hand-over waits for it);
   * rejects when the store refuses, or when writes still fail or keep coming
   * after 20 rounds: a hand-over must not release the lease with events
   * only in memory.
   */
  async flushed(): Promise<void> {
    const unsaved = () => this.pending.length > 0 || this.unsynced.size > 0 || this.recordDirty;
    for (let round = 0; round < 20 && (unsaved() || this.flushing); round++) {
      await this.flushing;
      if (unsaved()) await this.flush();
    }
    if (this.fenced) throw new FencedError(this.session.id);
    if (unsaved() || this.flushing) throw new Error(`the session still had ${this.pending.length} events and ${this.unsynced.size} executions unsaved after 20 flushes`);
  }

  private schedule(): void {
    if (this.flushQueued || this.fenced || this.retryTimer) return;
    this.flushQueued = true;
    // One write per turn of the event loop: a burst of output is one round trip.
    setImmediate(() => {
      this.flushQueued = false;
      void this.flush();
    });
  }

  private flush(): Promise<void> {
    if (this.flushing) {
      this.schedule();
      return this.flushing;
    }
    this.flushing = this.persistBatch().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async persistBatch(): Promise<void> {
    if (this.fenced) return;
    const executions = [...this.unsynced.values()];
    const link = this.session.worker?.linkProgress();
    const watermark = link ? { workerId: link.workerId, seq: link.delivered } : undefined;
    const moved = watermark !== undefined && (watermark.workerId !== this.watermark?.workerId || watermark.seq !== this.watermark.seq);
    const record = this.recordDirty ? this.record() : undefined;
    const batch = this.pending.splice(0);
    if (batch.length === 0 && executions.length === 0 && !moved && !record) return;
    this.recordDirty = false;
    try {
      // One script, one round trip: the record, executions and events of this turn together.
      // A batch retried after a partial failure re-appends events already stored: the store skips them.
      const events = batch.map((event) => ({ seq: event.seq, requestId: event.requestId, at: event.at, frame: event.frame, done: event.done }));
      await this.deps.store.persist(this.session.id, { ...(record ? { record } : {}), executions, events, ...(watermark ? { worker: watermark } : {}), keepFromSeq: this.session.events.log.oldestSeq }, this.lease);
    } catch (error) {
      this.pending.unshift(...batch);
      if (record) this.recordDirty = true;
      this.failed(error, "events");
      return;
    }
    for (const execution of executions) if (this.unsynced.get(execution.requestId) === execution) this.unsynced.delete(execution.requestId);
    this.retryDelayMs = 0;
    this.session.events.published(batch);
    if (watermark) {
      this.watermark = watermark;
      link?.confirm(watermark.seq);
    }
  }

  private async write(work: () => Promise<void>): Promise<void> {
    if (this.fenced) throw new FencedError(this.session.id);
    await work();
  }

  /** A write failed: fenced lets the session go; the store being away retries with backoff (clients wait: they only see what is persisted). */
  private failed(error: unknown, what: string): void {
    if (error instanceof FencedError) {
      if (this.fenced) return;
      this.fenced = true;
      this.logger.warn({ what }, "another replica took the session over; letting it go here");
      this.deps.onFenced(this.session);
      return;
    }
    const unavailable = error instanceof TetherError && error.code === ErrorCodes.STORE_UNAVAILABLE;
    if (this.retryDelayMs === 0) this.logger[unavailable ? "warn" : "error"]({ err: error, what }, "could not persist the session; retrying");
    this.retryDelayMs = Math.min(MAX_RETRY_DELAY_MS, Math.max(50, this.retryDelayMs * 2));
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.schedule();
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  /** Its lease is another replica's (or nobody's) now: let the session go, as a fenced write would. */
  fencedElsewhere(): void {
    this.failed(new FencedError(this.session.id), "ownership check");
  }

  /** Stops writing (the session is gone from this replica). */
  dispose(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.fenced = true;
  }
}
