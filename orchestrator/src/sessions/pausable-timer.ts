/**
 * A one-shot timer that can be paused: time spent paused does not count.
 * The execution backstop uses it so that time the orchestrator itself is
 * not reading the worker (a slow client holds it back) is not blamed on the
 * worker.
 */
export class PausableTimer {
  private timer: NodeJS.Timeout | undefined;
  private remainingMs: number;
  private startedAt = 0;
  private done = false;

  constructor(
    delayMs: number,
    private readonly callback: () => void,
  ) {
    this.remainingMs = delayMs;
    this.arm();
  }

  get paused(): boolean {
    return !this.done && this.timer === undefined;
  }

  pause(): void {
    if (this.done || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.remainingMs = Math.max(0, this.remainingMs - (Date.now() - this.startedAt));
  }

  resume(): void {
    if (this.done || this.timer) return;
    this.arm();
  }

  cancel(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.startedAt = Date.now();
    this.timer = setTimeout(() => {
      this.done = true;
      this.timer = undefined;
      this.callback();
    }, this.remainingMs);
    this.timer.unref();
  }
}
