import type { SessionStatusMessage } from "@tether/shared";
import type { LoggedEvent } from "./event-log.js";
import { phaseOf, statusOf, type LifecycleState } from "./session-lifecycle.js";

/** A client attached to the whole session (websocket streams): sees every message, numbered, and the session's end. */
export interface SessionObserver {
  /** One message as logged: an execution event, session_status, session_resumed. */
  deliver(event: LoggedEvent): void;
  /** The session is gone (deleted), its first start failed, or it moved to another replica (reconnect with ?after=). */
  sessionEnded(state: "stopped" | "failed" | "moved", reason: string): void;
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

  deliver(event: LoggedEvent): void {
    for (const observer of this.observers) observer.deliver(event);
  }

  /** Tells every observer the session ended, then forgets them. */
  end(state: "stopped" | "failed" | "moved", reason: string): void {
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
