import type { ExecutionEvent, SessionResumed, SessionStatusMessage } from "@tether/shared";
import { SessionEventLog, type EventLogLimits } from "./event-log.js";
import type { Execution } from "./execution-queue.js";
import { ExecutionRecords } from "./execution-records.js";
import { SessionObservers } from "./session-observers.js";

export interface SessionEventLimits extends EventLogLimits {
  /** stdout/stderr kept per execution record (TETHER_MAX_OUTPUT_BYTES). */
  maxOutputBytes: number;
}

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

  constructor(limits: SessionEventLimits) {
    this.log = new SessionEventLog(limits);
    this.records = new ExecutionRecords({ maxOutputBytes: limits.maxOutputBytes, maxBytes: limits.maxBytes, retentionMs: limits.retentionMs });
  }

  /** An execution event (or a session-wide kernel event); `raw` is the worker's JSON when there is one. */
  publish(event: ExecutionEvent, raw: Uint8Array | undefined): void {
    const logged = this.log.append(event, raw);
    if (event.requestId !== null) this.records.apply(event.requestId, event);
    this.observers.deliver(logged);
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
    this.observers.deliver(this.log.append(notice, undefined));
  }
}
