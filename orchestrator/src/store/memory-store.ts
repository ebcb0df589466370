import {
  FencedError,
  sameLease,
  type ClusterStore,
  type JoinTokenConsumption,
  type JoinTokenRecord,
  type Lease,
  type PersistBatch,
  type PoolMember,
  type ReplicaInfo,
  type SessionJournal,
  type SessionRecord,
  type StoredExecution,
  type WorkerRecord,
} from "./cluster-store.js";
import { MemoryAdapterBindings } from "./adapter-bindings.js";

/** A join token is remembered past its expiry, so a late replay is told "expired", not "invalid". */
export function joinTokenKeepMs(ttlMs: number): number {
  return ttlMs + Math.max(ttlMs, 60_000);
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/**
 * The embedded store: one process, nothing to run (`npm start`). Everything
 * lives in maps; leases always go to the one replica there is. Events are
 * not copied (the owner's in-memory log is the only one there can be).
 */
export class MemoryClusterStore implements ClusterStore {
  readonly kind = "memory" as const;
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly byTenant = new Map<string, Set<string>>();
  private readonly leases = new Map<string, Lease>();
  private readonly epochs = new Map<string, number>();
  private readonly replicaInfo = new Map<string, Expiring<ReplicaInfo>>();
  private readonly launches = new Map<string, Expiring<{ sessionId: string | null; replicaId: string }>>();
  private readonly joinTokens = new Map<string, Expiring<JoinTokenRecord & { spent: boolean }>>();
  private readonly joinDigestByLaunch = new Map<string, string>();
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly executions = new Map<string, Map<string, StoredExecution>>();
  private readonly startSlots = new Map<string, number>();
  /** Keyed by launch id; insertion order is age (oldest first). */
  private readonly pool = new Map<string, PoolMember>();
  private readonly poolClaims = new Map<string, Expiring<string>>();
  private lastSweepAt = Number.NEGATIVE_INFINITY;

  readonly adapters: MemoryAdapterBindings;

  constructor(private readonly now: () => number = Date.now) {
    this.adapters = new MemoryAdapterBindings(now);
  }

  async putSession(record: SessionRecord, lease: Lease): Promise<void> {
    this.fence(record.info.id, lease);
    this.sessions.set(record.info.id, record);
    let ids = this.byTenant.get(record.tenant);
    if (!ids) this.byTenant.set(record.tenant, (ids = new Set()));
    ids.add(record.info.id);
  }

  async getSession(sessionId: string): Promise<SessionRecord | undefined> {
    return this.sessions.get(sessionId);
  }

  async deleteSession(sessionId: string, tenant: string, lease: Lease): Promise<void> {
    this.fence(sessionId, lease, { orFree: true });
    this.sessions.delete(sessionId);
    this.byTenant.get(tenant)?.delete(sessionId);
    this.executions.delete(sessionId);
    this.leases.delete(sessionId);
  }

  async listSessions(tenant: string): Promise<SessionRecord[]> {
    return [...(this.byTenant.get(tenant) ?? [])].flatMap((id) => this.sessions.get(id) ?? []);
  }

  async countSessions(tenant: string): Promise<number> {
    return this.byTenant.get(tenant)?.size ?? 0;
  }

  async acquireLease(sessionId: string, replicaId: string): Promise<Lease | undefined> {
    const held = this.leases.get(sessionId);
    if (held?.replicaId === replicaId) return held;
    if (held && this.live(this.replicaInfo, held.replicaId)) return undefined;
    const lease = { replicaId, epoch: (this.epochs.get(sessionId) ?? 0) + 1 };
    this.epochs.set(sessionId, lease.epoch);
    this.leases.set(sessionId, lease);
    return lease;
  }

  async releaseLease(sessionId: string, lease: Lease): Promise<void> {
    const held = this.leases.get(sessionId);
    if (held?.replicaId === lease.replicaId && held.epoch === lease.epoch) this.leases.delete(sessionId);
  }

  async leaseOf(sessionId: string): Promise<Lease | undefined> {
    return this.leases.get(sessionId);
  }

  async announceReplica(info: ReplicaInfo, ttlMs: number): Promise<void> {
    this.replicaInfo.set(info.replicaId, { value: info, expiresAt: this.now() + ttlMs });
  }

  async replica(replicaId: string): Promise<ReplicaInfo | undefined> {
    return this.live(this.replicaInfo, replicaId);
  }

  async replicas(): Promise<ReplicaInfo[]> {
    return [...this.replicaInfo.keys()].flatMap((id) => this.live(this.replicaInfo, id) ?? []);
  }

  async forgetReplica(replicaId: string): Promise<void> {
    this.replicaInfo.delete(replicaId);
  }

  async putLaunch(launchId: string, binding: { sessionId: string | null; replicaId: string }, ttlMs: number): Promise<void> {
    this.launches.set(launchId, { value: binding, expiresAt: this.now() + ttlMs });
  }

  async getLaunch(launchId: string): Promise<{ sessionId: string | null; replicaId: string } | undefined> {
    return this.live(this.launches, launchId);
  }

  async deleteLaunch(launchId: string): Promise<void> {
    this.launches.delete(launchId);
  }

  async mintJoinToken(digest: string, record: JoinTokenRecord, ttlMs: number): Promise<void> {
    this.sweepJoinTokens();
    this.joinTokens.set(digest, { value: { ...record, spent: false }, expiresAt: this.now() + joinTokenKeepMs(ttlMs) });
    this.joinDigestByLaunch.set(record.launchId, digest);
  }

  /** Join tokens held (tests). */
  get joinTokenCount(): number {
    return this.joinTokens.size;
  }

  /** Forgets tokens past their keep time; throttled (thousands of sessions mint often). */
  private sweepJoinTokens(): void {
    const now = this.now();
    if (now - this.lastSweepAt < 1000) return;
    this.lastSweepAt = now;
    for (const [digest, entry] of this.joinTokens) {
      if (entry.expiresAt > now) continue;
      this.joinTokens.delete(digest);
      if (this.joinDigestByLaunch.get(entry.value.launchId) === digest) this.joinDigestByLaunch.delete(entry.value.launchId);
    }
  }

  async consumeJoinToken(digest: string, now: number): Promise<JoinTokenConsumption> {
    const entry = this.live(this.joinTokens, digest);
    if (!entry) return { ok: false, reason: "invalid" };
    if (entry.spent) return { ok: false, reason: "reused" };
    if (now >= entry.expiresAt) return { ok: false, reason: "expired" };
    entry.spent = true;
    const { spent: _spent, ...record } = entry;
    return { ok: true, record };
  }

  async revokeJoinToken(launchId: string): Promise<void> {
    const digest = this.joinDigestByLaunch.get(launchId);
    this.joinDigestByLaunch.delete(launchId);
    const entry = digest === undefined ? undefined : this.live(this.joinTokens, digest);
    if (entry) entry.spent = true;
  }

  async putWorker(record: WorkerRecord): Promise<void> {
    this.workers.set(record.workerId, record);
  }

  async getWorker(workerId: string): Promise<WorkerRecord | undefined> {
    return this.workers.get(workerId);
  }

  async deleteWorker(workerId: string): Promise<void> {
    this.workers.delete(workerId);
  }

  async putExecution(sessionId: string, execution: StoredExecution, lease: Lease): Promise<void> {
    this.fence(sessionId, lease);
    let executions = this.executions.get(sessionId);
    if (!executions) this.executions.set(sessionId, (executions = new Map()));
    executions.set(execution.requestId, execution);
  }

  async listExecutions(sessionId: string): Promise<StoredExecution[]> {
    return [...(this.executions.get(sessionId)?.values() ?? [])];
  }

  /** Events are not kept: the owner's in-memory log is the only copy a single process needs. */
  async persist(sessionId: string, batch: PersistBatch, lease: Lease): Promise<void> {
    this.fence(sessionId, lease);
    if (batch.record) await this.putSession(batch.record, lease);
    for (const execution of batch.executions ?? []) await this.putExecution(sessionId, execution, lease);
  }

  async readJournal(): Promise<SessionJournal> {
    return { events: [], lastSeq: 0 };
  }

  async tryAcquireStartSlot(slotId: string, max: number, ttlMs: number): Promise<boolean> {
    const now = this.now();
    for (const [id, expiresAt] of this.startSlots) if (expiresAt <= now) this.startSlots.delete(id);
    if (this.startSlots.size >= max) return false;
    this.startSlots.set(slotId, now + ttlMs);
    return true;
  }

  async releaseStartSlot(slotId: string): Promise<void> {
    this.startSlots.delete(slotId);
  }

  async startSlotsInUse(): Promise<number> {
    return this.startSlots.size;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}

  private live<T>(map: Map<string, Expiring<T>>, key: string): T | undefined {
    const entry = map.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      map.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async addPoolMember(member: PoolMember): Promise<void> {
    this.pool.set(member.launchId, { ...member });
  }

  async removePoolMember(member: PoolMember): Promise<boolean> {
    if (this.pool.get(member.launchId)?.replicaId !== member.replicaId) return false;
    return this.pool.delete(member.launchId);
  }

  async claimPoolMember(exceptReplicaId: string, claimToken: string, claimTtlMs: number): Promise<PoolMember | undefined> {
    for (const [launchId, member] of this.pool) {
      if (member.replicaId === exceptReplicaId) continue;
      const holder = this.live(this.replicaInfo, member.replicaId);
      if (!holder) this.pool.delete(launchId);
      if (!holder || holder.draining) continue;
      this.pool.delete(launchId);
      this.poolClaims.set(launchId, { value: claimToken, expiresAt: this.now() + claimTtlMs });
      return { ...member };
    }
    return undefined;
  }

  async redeemPoolClaim(launchId: string, claimToken: string): Promise<boolean> {
    const token = this.live(this.poolClaims, launchId);
    if (token === undefined || token !== claimToken) return false;
    this.poolClaims.delete(launchId);
    return true;
  }

  async relistPoolMembers(members: readonly PoolMember[]): Promise<void> {
    for (const member of members) {
      if (this.pool.has(member.launchId) || this.live(this.poolClaims, member.launchId) !== undefined) continue;
      this.pool.set(member.launchId, { ...member });
    }
  }

  async releasePoolClaim(member: PoolMember, claimToken: string): Promise<void> {
    if (this.live(this.poolClaims, member.launchId) !== claimToken) return;
    this.poolClaims.delete(member.launchId);
    if (!this.pool.has(member.launchId)) this.pool.set(member.launchId, { ...member });
  }

  async poolMembers(): Promise<PoolMember[]> {
    return [...this.pool.values()].filter((member) => this.live(this.replicaInfo, member.replicaId) !== undefined).map((member) => ({ ...member }));
  }

  /** A write needs `lease` to be the one held (as the Redis scripts do); a delete also goes through when none is. */
  private fence(sessionId: string, lease: Lease, options: { orFree?: boolean } = {}): void {
    const held = this.leases.get(sessionId);
    if (!held && options.orFree) return;
    if (!sameLease(held, lease)) throw new FencedError(sessionId);
  }
}
