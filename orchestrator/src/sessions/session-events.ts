import { Type } from "@sinclair/typebox";
import { ExecutionEvent, MessageCodec, SessionResumed, splitSequenced, type SessionStatusMessage } from "@tether/shared";
import { SessionEventLog, type EventLogLimits, type LoggedEvent } from "./event-log.js";
import type { Execution } from "./execution-queue.js";
import { ExecutionRecords } from "./execution-records.js";
import { SessionObservers } from "./session-observers.js";

export interface SessionEventLimits extends EventLogLimits {
  /** stdout/stderr kept per execution record (TETHER_MAX_OUTPUT_BYTES). */
  maxOutputBytes: number;
}

/** Cluster mode: each logged event is persisted before clients see it. */
export interface EventJournal {
  /** Every logged event, in order; the journal calls `SessionEvents.published` once they are persisted. */
  append(event: LoggedEvent): void;
}

/** What a replica taking the session over finds of its executions. */
export interface RestoredExecution {
  requestId: string;
  state: "queued" | "running" | "ended";
}

/** Reads a logged frame back (seq stripped): the events a record folds. */
const loggedCodec = new MessageCodec(Type.Union([ExecutionEvent, SessionResumed]));
const decoder = new TextDecoder();

/**
 * Everything a session tells its clients, in one place: each message is
 * numbered and kept in the event log (replayed with `?after=`), folded into
 * its execution's record (GET .../executions/:requestId), and handed to the
 * attached streams.
 */
export class SessionEvents {
  readonly log: SessionEventLog;
  readonly records: ExecutionRecords;
  readonly observers = new SessionObservers();
  private journal: EventJournal | undefined;

  constructor(limits: SessionEventLimits) {
    this.log = new SessionEventLog(limits);
    this.records = new ExecutionRecords({ maxOutputBytes: limits.maxOutputBytes, maxBytes: limits.maxBytes, retentionMs: limits.retentionMs });
  }

  /** An execution event (or a session-wide kernel event); `raw` is the worker's JSON when there is one. */
  publish(event: ExecutionEvent, raw: Uint8Array | undefined): void {
    const logged = this.log.append(event, raw);
    if (event.requestId !== null) this.records.apply(event.requestId, event);
    this.deliver(logged);
  }

  /** From now on, clients see an event once `journal` persisted it. */
  persistWith(journal: EventJournal): void {
    this.journal = journal;
    this.log.gate();
  }

  /** Persisted (or nothing to persist): clients see these now, in order. */
  published(events: readonly LoggedEvent[]): void {
    const last = events.at(-1);
    if (!last) return;
    this.log.publishThrough(last.seq);
    for (const event of events) this.observers.deliver(event);
  }

  /**
   * Continues what another replica logged: the events (numbering goes on
   * after `lastSeq`) and the execution records folded from them.
   */
  restore(events: readonly LoggedEvent[], lastSeq: number, executions: readonly RestoredExecution[]): void {
    this.log.restore(events, lastSeq);
    const doneInLog = new Set(events.flatMap((event) => (event.done && event.requestId !== null ? [event.requestId] : [])));
    for (const execution of executions) {
      // An ended execution whose events are gone has nothing to show: asking for it says 410.
      if (execution.state === "ended" && !doneInLog.has(execution.requestId)) continue;
      const record = this.records.create(execution.requestId);
      if (execution.state !== "queued") record.started();
    }
    for (const event of events) {
      if (event.requestId === null) continue;
      const body = splitSequenced(event.frame)?.body;
      const decoded = body ? loggedCodec.decode(decoder.decode(body)) : undefined;
      if (!decoded?.ok) continue;
      const message = decoded.value;
      if (message.type === "session_resumed") {
        const record = this.records.get(message.requestId);
        if (record && record !== "expired") record.resumed();
      } else if (message.requestId !== null) {
        this.records.apply(message.requestId, message);
      }
    }
  }

  private deliver(logged: LoggedEvent): void {
    if (this.journal) this.journal.append(logged);
    else this.published([logged]);
  }

  /** An execution went to the worker: its record says running. */
  started(execution: Execution): void {
    const record = this.records.get(execution.requestId);
    if (record && record !== "expired") record.started();
  }

  /** The first execution on a worker that resumed the session: it (and everyone) hears that variables are gone. */
  resumedBy(execution: Execution, restoredFiles: number): void {
    const notice: SessionResumed = { type: "session_resumed", requestId: execution.requestId, stateLost: true, restoredFiles };
    execution.resumed = true;
    execution.sink?.resumed?.(notice);
    this.notice(notice);
  }

  /** A notice the orchestrator makes: session_status on a phase change, session_resumed before a resuming execution. */
  notice(notice: SessionStatusMessage | SessionResumed): void {
    if (notice.type === "session_resumed") {
      const record = this.records.get(notice.requestId);
      if (record && record !== "expired") record.resumed();
    }
    this.deliver(this.log.append(notice, undefined));
  }
}
