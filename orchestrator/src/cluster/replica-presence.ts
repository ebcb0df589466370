import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { ClusterStore, ReplicaInfo } from "../store/cluster-store.js";

/**
 * This replica's presence in the cluster: an id, the address other replicas
 * forward to, and a key in the store it renews every fifth of its TTL. While
 * the key lives, the replica owns its sessions; once it is gone (a crash, a
 * partition from Redis), the next replica that needs one of them takes it.
 */
/** A fresh id per process: a restarted replica is a new one (its predecessor's sessions were taken or handed over). */
export function newReplicaId(): string {
  return `rep_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

export class ReplicaPresence {
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private lastAnnouncedAt: number | undefined;
  private readonly lapseListeners: (() => void)[] = [];

  constructor(
    readonly replicaId: string,
    private readonly store: ClusterStore,
    private readonly address: () => string,
    readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  get isDraining(): boolean {
    return this.draining;
  }

  /** Announces the replica now, then keeps announcing it. Rejects when the store is unreachable (start-up fails fast). */
  async start(): Promise<void> {
    await this.announce();
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 5)));
    this.timer.unref();
    this.logger.info({ replicaId: this.replicaId, address: this.address(), ttlMs: this.ttlMs }, "replica announced");
  }

  /** Shutting down: other replicas stop sending it new work (it hands its sessions over). */
  async drain(): Promise<void> {
    this.draining = true;
    await this.announce().catch(() => undefined);
  }

  /** Gone: its remaining sessions are free to take at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.store.forgetReplica(this.replicaId).catch(() => undefined);
  }

  /**
   * Runs after an announcement that came more than a TTL after the last one
   * (the process was frozen, or cut off from Redis): other replicas may have
   * presumed it dead and taken its sessions, which it must check before it
   * acts on them again.
   */
  onLapse(listener: () => void): void {
    this.lapseListeners.push(listener);
  }

  private async renew(): Promise<void> {
    const lapsed = this.lastAnnouncedAt !== undefined && Date.now() - this.lastAnnouncedAt > this.ttlMs;
    try {
      await this.announce();
    } catch {
      return;
    }
    if (!lapsed) return;
    this.logger.warn({ ttlMs: this.ttlMs }, "the replica's announcement lapsed; checking which sessions are still its own");
    for (const listener of this.lapseListeners) listener();
  }

  info(): ReplicaInfo {
    return { replicaId: this.replicaId, address: this.address(), draining: this.draining };
  }

  private async announce(): Promise<void> {
    try {
      await this.store.announceReplica(this.info(), this.ttlMs);
      this.lastAnnouncedAt = Date.now();
      if (this.failing) this.logger.info("the replica announces itself again");
      this.failing = false;
    } catch (error) {
      // Past the TTL other replicas may take our sessions; our fenced writes then tell us.
      if (!this.failing) this.logger.error({ err: error, ttlMs: this.ttlMs }, "could not announce the replica; past its TTL other replicas may take over its sessions");
      this.failing = true;
      throw error;
    }
  }
}
