/** setTimeout's ceiling (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SessionClocksOptions {
  /** Seconds without activity before the session scales to zero. */
  idleTimeoutS: number;
  /** Longest one worker serves the session. */
  maxLifetimeMs: number;
  onIdle(): void;
  onLifetimeExpired(): void;
}

/**
 * The two clocks of a session's worker (the third, the execution timeout,
 * runs in the worker): idle (scale to zero after `idleTimeoutS` without
 * activity) and lifetime (stop a worker that served the session too long).
 */
export class SessionClocks {
  private idleTimer: NodeJS.Timeout | undefined;
  private lifetimeTimer: NodeJS.Timeout | undefined;
  private expired = false;

  constructor(private readonly options: SessionClocksOptions) {}

  get idleTimeoutS(): number {
    return this.options.idleTimeoutS;
  }

  /** The worker served its maximum lifetime; the session stops once nothing runs. */
  get lifetimeExpired(): boolean {
    return this.expired;
  }

  /** (Re)starts the idle countdown. */
  armIdle(): void {
    this.clearIdle();
    const idleMs = Math.min(MAX_TIMER_MS, this.options.idleTimeoutS * 1000);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.options.onIdle();
    }, idleMs);
    this.idleTimer.unref();
  }

  clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** A new worker serves the session: its lifetime starts now. */
  armLifetime(): void {
    if (this.lifetimeTimer) clearTimeout(this.lifetimeTimer);
    this.expired = false;
    this.lifetimeTimer = setTimeout(() => {
      this.lifetimeTimer = undefined;
      this.expired = true;
      this.options.onLifetimeExpired();
    }, Math.min(MAX_TIMER_MS, this.options.maxLifetimeMs));
    this.lifetimeTimer.unref();
  }

  clear(): void {
    this.clearIdle();
    if (this.lifetimeTimer) clearTimeout(this.lifetimeTimer);
    this.lifetimeTimer = undefined;
  }
}
