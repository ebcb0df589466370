import { once } from "node:events";
import type WebSocket from "ws";
import type { SessionStatus } from "@tether/shared";

/**
 * An array that tells its waiters when it changes, so a test waits for the
 * item it needs rather than polling on a timer.
 */
export class ObservedArray<T> extends Array<T> {
  private readonly waiters: (() => void)[] = [];

  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  override push(...items: T[]): number {
    const length = super.push(...items);
    for (const wake of this.waiters.splice(0)) wake();
    return length;
  }

  /** Resolves once `condition` holds, checking it now and after every push. */
  async until(condition: (items: this) => boolean, timeoutMs = 30_000, what = "the expected item"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** What a session offers for waiting on it: its status and its observers. */
interface ObservableSession {
  readonly state: SessionStatus;
  readonly events: { observers: { add(observer: SessionFrameObserver): void; remove(observer: SessionFrameObserver): void } };
}
interface SessionFrameObserver {
  deliver(event: { frame: Uint8Array }): void;
  sessionEnded(): void;
}

/** Resolves when the session's status becomes `status` (it announces every phase change to its observers). */
export function sessionReaches(session: ObservableSession, status: SessionStatus, timeoutMs = 30_000): Promise<void> {
  if (session.state === status) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.events.observers.remove(observer);
      reject(new Error(`The session did not become ${status} within ${timeoutMs} ms (it is ${session.state}).`));
    }, timeoutMs);
    const observer: SessionFrameObserver = {
      deliver: () => {
        if (session.state !== status) return;
        clearTimeout(timer);
        session.events.observers.remove(observer);
        resolve();
      },
      sessionEnded: () => undefined,
    };
    session.events.observers.add(observer);
  });
}

/** Resolves when the socket has closed (at once if it already has). */
export async function closedSocket(socket: WebSocket): Promise<void> {
  if (socket.readyState === socket.CLOSED) return;
  await once(socket, "close");
}
