import type { ExecutionEvent, SessionResumed, SessionStatusMessage } from "@tether/shared";
import { phaseOf, statusOf, type LifecycleState } from "./session-lifecycle.js";

/** A client attached to the whole session (websocket streams): sees every execution's events, phase changes and the session's end. */
export interface SessionObserver {
  deliverSessionEvent(event: ExecutionEvent, raw: Uint8Array | undefined): void;
  /** session_status on every phase change; session_resumed before a resuming execution's events. */
  deliverNotice(notice: SessionStatusMessage | SessionResumed): void;
  /** The session is gone (deleted) or its first start failed. */
  sessionEnded(state: "stopped" | "failed", reason: string): void;
}

/** The observers of one session, and the fan-out to them. */
export class SessionObservers {
  private readonly observers = new Set<SessionObserver>();

  add(observer: SessionObserver): void {
    this.observers.add(observer);
  }

  remove(observer: SessionObserver): void {
    this.observers.delete(observer);
  }

  event(event: ExecutionEvent, raw: Uint8Array | undefined): void {
    for (const observer of this.observers) observer.deliverSessionEvent(event, raw);
  }

  notice(notice: SessionStatusMessage | SessionResumed): void {
    for (const observer of this.observers) observer.deliverNotice(notice);
  }

  /** Tells every observer the session ended, then forgets them. */
  end(state: "stopped" | "failed", reason: string): void {
    for (const observer of this.observers) observer.sessionEnded(state, reason);
    this.observers.clear();
  }
}

/** The session_status a lifecycle move shows observers: only when the client-visible phase changes (a deletion ends their streams instead). */
export function statusNotice(from: LifecycleState, to: LifecycleState, reason: string | undefined): SessionStatusMessage | undefined {
  const phase = phaseOf(to);
  if (to.name === "deleted" || phase === phaseOf(from)) return undefined;
  return {
    type: "session_status",
    requestId: null,
    status: statusOf(to),
    phase,
    ...(reason ? { reason } : {}),
    ...(to.name === "stopping" || to.name === "stopped" ? { stopReason: to.stop } : {}),
  };
}
