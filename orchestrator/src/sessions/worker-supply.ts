import type { Logger } from "pino";
import { ErrorCodes, tetherError } from "../errors.js";
import type { StartLimiter, StartSlot } from "../workers/start-limiter.js";
import type { WarmPool } from "../workers/warm-pool.js";
import type { WorkerHandle } from "../workers/worker-handle.js";

export interface WorkerSupplyDeps {
  limiter: StartLimiter;
  /** Where new sessions and resumes get a worker first; undefined without a pool. */
  pool: WarmPool | undefined;
  /** A new, unstarted worker launched for `sessionId`. */
  createWorker(sessionId: string): WorkerHandle;
}

/**
 * Where a session's workers come from: a warm-pool claim, else a new launch
 * once a start slot (TETHER_MAX_CONCURRENT_STARTS) is free. The first start
 * reserves its worker or slot synchronously, so a create over the limit is
 * refused before any answer.
 */
/** Where a session's worker came from: the warm pool (started before the session: a warm start) or a launch for it (a cold start). */
export type WorkerSource = "pool" | "launch";

export class WorkerSupply {
  private reserved: { worker: WorkerHandle } | { slot: StartSlot } | undefined;
  private lastSource: WorkerSource | undefined;

  constructor(
    private readonly sessionId: string,
    private readonly deps: WorkerSupplyDeps,
    private readonly logger: Logger,
  ) {}

  /** Where the last worker obtain() gave came from; undefined before the first. */
  get source(): WorkerSource | undefined {
    return this.lastSource;
  }

  /**
   * Claims a pooled worker (`preferLaunchId` first when given: one another
   * replica claimed for this session), or a start slot; throws 429
   * TETHER_ERR_SESSION_START_LIMIT with Retry-After. A claim does no process or network work.
   */
  reserve(preferLaunchId?: string): void {
    const claimed = this.claim(preferLaunchId);
    if (claimed) {
      this.reserved = { worker: claimed };
      return;
    }
    const slot = this.deps.limiter.tryAcquire();
    if (!slot) {
      throw tetherError(ErrorCodes.SESSION_START_LIMIT, `${this.deps.limiter.max} workers are already starting (TETHER_MAX_CONCURRENT_STARTS).`, {
        retryAfterS: this.deps.limiter.retryAfterS(),
        hint: "Retry after the Retry-After seconds, or raise TETHER_MAX_CONCURRENT_STARTS / TETHER_POOL_SIZE.",
      });
    }
    this.reserved = { slot };
  }

  /**
   * The reserved worker or slot, else a pooled worker, else a new launch
   * once a start slot is free (started, its slot released when it is ready
   * or failed). `abandoned` is asked after waiting: true refuses the worker.
   */
  async obtain(abandoned: () => boolean): Promise<WorkerHandle> {
    const reserved = this.reserved;
    this.reserved = undefined;
    if (reserved && "worker" in reserved) return this.from("pool", reserved.worker);
    let slot = reserved?.slot;
    if (!slot) {
      const claimed = this.claim();
      if (claimed) return this.from("pool", claimed);
      slot = await this.deps.limiter.acquire();
    }
    if (abandoned()) {
      slot();
      throw tetherError(ErrorCodes.SESSION_STOPPED, `Session '${this.sessionId}' was deleted while starting.`);
    }
    const worker = this.deps.createWorker(this.sessionId);
    const release = slot;
    worker.ready.then(release, release);
    worker.start();
    return this.from("launch", worker);
  }

  /** Gives back what reserve() took and nobody used (the session was deleted first). */
  async release(reason: string): Promise<void> {
    const reserved = this.reserved;
    this.reserved = undefined;
    if (!reserved) return;
    if ("slot" in reserved) reserved.slot();
    else await reserved.worker.stop(reason);
  }

  private from(source: WorkerSource, worker: WorkerHandle): WorkerHandle {
    this.lastSource = source;
    return worker;
  }

  private claim(preferLaunchId?: string): WorkerHandle | undefined {
    const claimed = this.deps.pool?.claim(preferLaunchId);
    if (claimed) this.logger.info({ launchId: claimed.launchId, workerState: claimed.state, claimedElsewhere: preferLaunchId === claimed.launchId }, "claimed a pooled worker");
    else if (preferLaunchId !== undefined) this.logger.info({ launchId: preferLaunchId }, "the pooled worker claimed for this session is gone and the pool is empty: starting cold");
    return claimed;
  }
}
