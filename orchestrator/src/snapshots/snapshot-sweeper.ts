import type { Logger } from "pino";
import type { SnapshotStore } from "./snapshot-store.js";

/**
 * Runs the store's expiry sweep at start and every TETHER_SNAPSHOT_SWEEP_INTERVAL_S.
 * Every replica runs one; the stores make concurrent sweeps safe. A failed
 * sweep is logged and tried again next time.
 */
export class SnapshotSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: SnapshotStore,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweepNow(), this.intervalMs);
    this.timer.unref();
    void this.sweepNow();
  }

  /** One sweep now (or the one in progress). */
  sweepNow(): Promise<void> {
    this.running ??= (async () => {
      const startedAt = Date.now();
      try {
        const result = await this.store.sweep();
        const level = result.expired + result.removed > 0 ? "info" : "debug";
        this.logger[level]({ ...result, sweepMs: Date.now() - startedAt, store: this.store.kind }, "snapshot sweep done");
      } catch (error) {
        this.logger.warn({ err: error, store: this.store.kind }, "the snapshot sweep failed; it runs again at the next interval");
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
