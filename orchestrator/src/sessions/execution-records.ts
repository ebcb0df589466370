import type { ExecutionEvent, ExecutionSummary, ExecutionView } from "@tether/shared";
import { ExecutionResultFold } from "./execution-result.js";

/** Where an execution is: waiting its turn, running, or ended with a done status. */
export type ExecutionState = ExecutionView["status"];

/** Most executions a session remembers (beyond the byte and time budgets). */
const MAX_RECORDS = 500;
/** Ids of forgotten executions remembered, so asking for one says "expired" (410), not "unknown" (404). */
const MAX_TOMBSTONES = 2000;

/**
 * One execution as a resource: its state and its REST view (the same body a
 * synchronous execute answers with), folded as events arrive.
 */
export class ExecutionRecord {
  state: ExecutionState = "queued";
  readonly createdAt = new Date();
  startedAt: Date | undefined;
  doneAt: Date | undefined;
  private readonly fold: ExecutionResultFold;
  private readonly waiters: (() => void)[] = [];

  constructor(
    readonly requestId: string,
    maxOutputBytes: number,
  ) {
    this.fold = new ExecutionResultFold(requestId, maxOutputBytes);
  }

  get done(): boolean {
    return this.doneAt !== undefined;
  }

  /** Bytes the fold holds (what this record costs). */
  get bytes(): number {
    return this.fold.retainedBytes;
  }

  /** The session moved to another replica before this execution ended here. */
  moved = false;

  /** Wakes whoever waits for the done: it will come at the session's next owner. */
  abandon(): void {
    if (this.done) return;
    this.moved = true;
    for (const wake of this.waiters.splice(0)) wake();
  }

  started(): void {
    if (this.state === "queued") this.state = "running";
    this.startedAt ??= new Date();
  }

  apply(event: ExecutionEvent): void {
    this.fold.apply(event);
    if (event.type !== "done") return;
    this.state = event.status;
    this.doneAt = new Date();
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** The execution resumed a stopped session on a new worker. */
  resumed(): void {
    this.fold.markResumed();
  }

  view(): ExecutionView {
    return { ...this.fold.toResponse(), status: this.state };
  }

  summary(): ExecutionSummary {
    return {
      requestId: this.requestId,
      status: this.state,
      createdAt: this.createdAt.toISOString(),
      ...(this.startedAt ? { startedAt: this.startedAt.toISOString() } : {}),
      ...(this.doneAt ? { doneAt: this.doneAt.toISOString() } : {}),
    };
  }

  /** Resolves when done, or after `timeoutMs` (whichever first; Infinity waits for the done). */
  waitDone(timeoutMs: number): Promise<void> {
    if (this.done || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = Number.isFinite(timeoutMs) ? setTimeout(finish, timeoutMs) : undefined;
      timer?.unref();
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(finish);
    });
  }
}

export interface ExecutionRecordLimits {
  maxOutputBytes: number;
  /** Bytes all done records of the session may hold together. */
  maxBytes: number;
  /** How long after done a record is kept. */
  retentionMs: number;
}

/**
 * A session's executions by requestId: the live ones and recent ended ones,
 * within a byte, time and count budget. Clients cannot reuse a requestId
 * while its record is kept (Session.assertNewRequestId); one whose record
 * was dropped may come back, and then replaces it.
 */
export class ExecutionRecords {
  private readonly records = new Map<string, ExecutionRecord>();
  private readonly tombstones = new Set<string>();

  constructor(private readonly limits: ExecutionRecordLimits) {}

  create(requestId: string): ExecutionRecord {
    this.forget(requestId);
    const record = new ExecutionRecord(requestId, this.limits.maxOutputBytes);
    this.records.set(requestId, record);
    this.evict();
    return record;
  }

  /** The record, "expired" when it was forgotten, undefined when never known. */
  get(requestId: string): ExecutionRecord | "expired" | undefined {
    this.evict();
    return this.records.get(requestId) ?? (this.tombstones.has(requestId) ? "expired" : undefined);
  }

  /** Newest first. */
  list(limit: number): ExecutionRecord[] {
    this.evict();
    return [...this.records.values()].reverse().slice(0, limit);
  }

  /** The session moved: waiters of executions not ended are woken (they answer SESSION_MOVED). */
  abandonAll(): void {
    for (const record of this.records.values()) record.abandon();
  }

  apply(requestId: string, event: ExecutionEvent): void {
    const record = this.records.get(requestId);
    if (!record) return;
    record.apply(event);
    if (event.type === "done") this.evict();
  }

  private forget(requestId: string): void {
    if (!this.records.delete(requestId)) return;
    this.tombstones.add(requestId);
    if (this.tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.tombstones.values().next().value;
      if (oldest !== undefined) this.tombstones.delete(oldest);
    }
  }

  /** Drops ended records, oldest first, past the time, count or byte budget. Running ones stay. */
  private evict(): void {
    const now = Date.now();
    let bytes = 0;
    for (const record of this.records.values()) bytes += record.bytes;
    for (const record of [...this.records.values()]) {
      if (!record.done) continue;
      const old = now - (record.doneAt?.getTime() ?? now) > this.limits.retentionMs;
      if (!old && bytes <= this.limits.maxBytes && this.records.size <= MAX_RECORDS) break;
      bytes -= record.bytes;
      this.forget(record.requestId);
    }
  }
}
