import { realTimers, type LinkTimers, type TimerHandle } from "./resumable-link.js";

/** A peer silent for this many heartbeat intervals is presumed gone. */
export const HEARTBEAT_MISSES = 3;

export interface LivenessOptions {
  intervalMs: number;
  /** Called once per interval while the peer is heard (the orchestrator pings; the worker only listens). */
  ping?: () => void;
  /** The peer stayed silent for HEARTBEAT_MISSES intervals. The watch stops; `restart()` arms it again. */
  onSilent(silentMs: number): void;
  timers?: LinkTimers;
  now?: () => number;
}

/**
 * The heartbeat policy both ends of the worker link share: count silence in
 * intervals, and give up on the peer after HEARTBEAT_MISSES of them. While
 * suspended (its owner stopped reading the socket, e.g. for a slow client)
 * silence is not the peer's fault and is not counted.
 */
export class LivenessWatch {
  private lastHeardAt: number;
  private suspended = false;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private readonly timers: LinkTimers;
  private readonly now: () => number;

  constructor(private readonly options: LivenessOptions) {
    this.timers = options.timers ?? realTimers;
    this.now = options.now ?? Date.now;
    this.lastHeardAt = this.now();
    this.schedule();
  }

  /** Any sign of life: a pong, a ping, a frame. */
  heard(): void {
    this.lastHeardAt = this.now();
  }

  /** Stops counting silence (true) or starts again from now (false). */
  suspend(suspended: boolean): void {
    if (this.suspended === suspended) return;
    this.suspended = suspended;
    if (!suspended) this.lastHeardAt = this.now();
  }

  /** Arms the watch again from now (a new socket). */
  restart(): void {
    this.stopped = false;
    this.lastHeardAt = this.now();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timers.clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = this.timers.setTimeout(() => this.tick(), this.options.intervalMs);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    if (!this.suspended) {
      const silentMs = this.now() - this.lastHeardAt;
      if (silentMs >= HEARTBEAT_MISSES * this.options.intervalMs) {
        this.stop();
        this.options.onSilent(silentMs);
        return;
      }
      this.options.ping?.();
    }
    this.schedule();
  }
}
