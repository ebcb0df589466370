/** Told of each start slot taken and freed, by an id unique in this process. */
export interface StartObserver {
  granted(id: string): void;
  released(id: string): void;
}

/** Frees the slot; calling it again does nothing. */
export type StartSlot = () => void;

/** A start's duration is guessed at this until one has been measured. */
const INITIAL_START_ESTIMATE_MS = 5000;
const MAX_RETRY_AFTER_S = 60;

/**
 * TETHER_MAX_CONCURRENT_STARTS: worker launches in progress, whoever asked
 * (session creates, resumes, pool refills). A create over the limit is
 * refused (429 with a Retry-After guessed from recent start times); a resume
 * waits its turn, first come first served.
 */
export class StartLimiter {
  private readonly active = new Map<symbol, number>();
  private readonly waiters: ((slot: StartSlot) => void)[] = [];
  private readonly availableListeners = new Set<() => void>();
  /** Exponentially weighted average of recent start durations. */
  private estimateMs = INITIAL_START_ESTIMATE_MS;
  private observer: StartObserver | undefined;
  private nextId = 1;

  constructor(readonly max: number) {}

  /** A slot now, or undefined at the limit. */
  tryAcquire(): StartSlot | undefined {
    if (this.active.size >= this.max || this.waiters.length > 0) return undefined;
    return this.grant();
  }

  /** A slot, waiting in line for one at the limit. */
  acquire(): Promise<StartSlot> {
    const slot = this.tryAcquire();
    if (slot) return Promise.resolve(slot);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Hears of every slot taken and freed (a cluster counts starts across replicas). */
  observe(observer: StartObserver): void {
    this.observer = observer;
  }

  /** Called (once per registration) the next time a slot frees with nobody waiting: the pool refills then. */
  onAvailable(listener: () => void): void {
    this.availableListeners.add(listener);
  }

  /**
   * Seconds a refused create should wait: how long a start takes right now
   * (the recent average, or longer if the oldest start in progress has
   * already run longer: under a burst every start slows down), times the
   * rounds of starts queued ahead, minus what the oldest has done. At least 1.
   */
  retryAfterS(): number {
    const now = Date.now();
    const oldest = Math.min(...this.active.values());
    const oldestElapsedMs = Number.isFinite(oldest) ? now - oldest : 0;
    const perStartMs = Math.max(this.estimateMs, oldestElapsedMs);
    const roundsAhead = Math.floor(this.waiters.length / this.max);
    const untilFirstFreeMs = Math.max(perStartMs - oldestElapsedMs, perStartMs / 4);
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil((untilFirstFreeMs + roundsAhead * perStartMs) / 1000)));
  }

  private grant(): StartSlot {
    const key = Symbol("start");
    const id = `start-${this.nextId++}`;
    const startedAt = Date.now();
    this.active.set(key, startedAt);
    this.observer?.granted(id);
    return () => {
      if (!this.active.delete(key)) return;
      this.observer?.released(id);
      this.estimateMs = 0.7 * this.estimateMs + 0.3 * (Date.now() - startedAt);
      const next = this.waiters.shift();
      if (next) {
        next(this.grant());
        return;
      }
      const listeners = [...this.availableListeners];
      this.availableListeners.clear();
      for (const listener of listeners) listener();
    };
  }
}
