import type { Logger } from "pino";
import type { PoolStatus } from "@tether/shared";
import type { StartLimiter } from "./start-limiter.js";
import type { WorkerHandle } from "./worker-handle.js";

export interface WarmPoolOptions {
  /** TETHER_POOL_SIZE. */
  targetSize: number;
  limiter: StartLimiter;
  /** A new, unstarted worker with no session (and the preload code, if any). */
  createWorker(): WorkerHandle;
  logger: Logger;
}

type WarmPoolState = "idle" | "running" | "closed";

/** Who hears which workers are idle and ready (the cluster lists them for every replica). */
export interface PoolMembership {
  /** Ready and unclaimed: claimable from now on. */
  listed(launchId: string): void;
  /** No longer claimable here: claimed, or lost. */
  withdrawn(launchId: string): void;
}

/** After a pooled worker fails to start, wait this long (doubling per failure in a row) before the next launch. */
const FAILURE_BACKOFF_MS = 1000;
const MAX_FAILURE_BACKOFF_MS = 60_000;
/**
 * A claim refills this much later: spawning a worker costs the event loop
 * milliseconds, which belong to the claimed session's first execution, not to
 * the refill (a cold start takes seconds anyway).
 */
const REFILL_AFTER_CLAIM_MS = 250;

/**
 * TETHER_POOL_SIZE workers dialed in with a kernel ready and no session.
 * claim() hands one to a session at once and launches a replacement; the
 * claimed worker serves only that session and is never given back, so each
 * claim gets a kernel and a workspace nobody has used.
 */
export class WarmPool {
  private state: WarmPoolState = "idle";
  /** Unclaimed workers, oldest first: starting ones and ready ones. */
  private readonly workers = new Set<WorkerHandle>();
  private failuresInRow = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private waitingForSlot = false;
  private refillTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;
  private membership: PoolMembership | undefined;

  constructor(private readonly options: WarmPoolOptions) {
    this.logger = options.logger.child({ component: "warm-pool" });
  }

  /** Begins filling (once the orchestrator listens: workers need its address). */
  start(): void {
    if (this.state !== "idle" || this.options.targetSize === 0) return;
    this.state = "running";
    this.logger.info({ target: this.options.targetSize }, "filling the warm pool");
    this.refill();
  }

  /** Hears every ready worker listed and withdrawn from now on (and those ready already, at once). */
  observe(membership: PoolMembership): void {
    this.membership = membership;
    for (const worker of this.workers) if (worker.state === "ready") membership.listed(worker.launchId);
  }

  /** Ready workers claimable at once (no start to wait for). */
  /** The ready, unclaimed workers' launch ids. */
  readyLaunchIds(): string[] {
    const ids: string[] = [];
    for (const worker of this.workers) if (worker.state === "ready") ids.push(worker.launchId);
    return ids;
  }

  get readyCount(): number {
    let ready = 0;
    for (const worker of this.workers) if (worker.state === "ready") ready += 1;
    return ready;
  }

  status(): PoolStatus {
    const ready = this.readyCount;
    // A refill scheduled after a claim counts as starting: it is on its way.
    const scheduled = this.refillTimer ? Math.max(0, this.options.targetSize - this.workers.size) : 0;
    return { target: this.options.targetSize, ready, starting: this.workers.size - ready + scheduled };
  }

  /**
   * An unclaimed worker for a session: `preferLaunchId` when it is still
   * here and ready (another replica claimed it for this session), else a
   * ready one if any, else one still starting (it is further along than a
   * new launch). Undefined when empty.
   */
  claim(preferLaunchId?: string): WorkerHandle | undefined {
    let chosen: WorkerHandle | undefined;
    if (preferLaunchId !== undefined) {
      for (const worker of this.workers) if (worker.launchId === preferLaunchId && worker.state === "ready") chosen = worker;
    }
    for (const worker of chosen ? [] : this.workers) {
      if (worker.state === "ready") {
        chosen = worker;
        break;
      }
      if (!chosen && (worker.state === "launching" || worker.state === "connected")) chosen = worker;
    }
    if (!chosen) return undefined;
    this.workers.delete(chosen);
    chosen.setListener(undefined);
    if (chosen.state === "ready") this.membership?.withdrawn(chosen.launchId);
    this.logger.debug({ launchId: chosen.launchId, state: chosen.state }, "worker claimed");
    this.refillTimer ??= setTimeout(() => {
      this.refillTimer = undefined;
      this.refill();
    }, REFILL_AFTER_CLAIM_MS);
    this.refillTimer.unref();
    return chosen;
  }

  /** Stops every unclaimed worker and launches no more. */
  async close(): Promise<void> {
    this.state = "closed";
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    if (this.refillTimer) clearTimeout(this.refillTimer);
    const workers = [...this.workers];
    this.workers.clear();
    await Promise.allSettled(workers.map((worker) => worker.stop("orchestrator shutting down")));
  }

  private refill(): void {
    if (this.state !== "running" || this.backoffTimer) return;
    while (this.workers.size < this.options.targetSize) {
      const slot = this.options.limiter.tryAcquire();
      if (!slot) {
        if (!this.waitingForSlot) {
          this.waitingForSlot = true;
          this.options.limiter.onAvailable(() => {
            this.waitingForSlot = false;
            this.refill();
          });
        }
        return;
      }
      this.launchOne(slot);
    }
  }

  private launchOne(releaseSlot: () => void): void {
    const worker = this.options.createWorker();
    this.workers.add(worker);
    worker.setListener({
      phase: () => {},
      message: () => {},
      // An idle pooled worker died: replace it.
      lost: (_code, message) => {
        if (!this.workers.delete(worker)) return;
        this.membership?.withdrawn(worker.launchId);
        this.logger.warn({ launchId: worker.launchId, reason: message }, "an idle pooled worker was lost");
        this.refill();
      },
    });
    worker.start();
    worker.ready.then(
      () => {
        releaseSlot();
        this.failuresInRow = 0;
        if (!this.workers.has(worker)) return;
        this.membership?.listed(worker.launchId);
        this.logger.info({ launchId: worker.launchId, startMs: worker.startMs, ...this.status() }, "pooled worker ready");
      },
      (error: Error) => {
        releaseSlot();
        // Claimed while starting: its session deals with the failure.
        if (!this.workers.delete(worker) || this.state !== "running") return;
        this.failuresInRow += 1;
        const backoffMs = Math.min(MAX_FAILURE_BACKOFF_MS, FAILURE_BACKOFF_MS * 2 ** (this.failuresInRow - 1));
        this.logger.error({ launchId: worker.launchId, err: error, backoffMs }, "a pooled worker failed to start");
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = undefined;
          this.refill();
        }, backoffMs);
        this.backoffTimer.unref();
      },
    );
  }
}
