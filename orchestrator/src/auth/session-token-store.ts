/** What is kept of one session token: never the token, only its digest. */
export interface SessionTokenRecord {
  /** `stk_…`: names the token in revocations and logs; not a secret. */
  tokenId: string;
  /** sha256 of the token (base64url). */
  digest: string;
  tenant: string;
  sessionId: string;
  createdAtMs: number;
  expiresAtMs: number;
  /** Set once revoked. The record stays until `expiresAtMs` + retention, so a revoked token is told apart from an unknown one. */
  revokedAtMs?: number;
}

/**
 * Where session tokens live. Async so that a shared store (Redis, for
 * replicas behind a load balancer) fits behind it. A store may forget a record
 * once it is past `expiresAtMs` + its retention: the token is then unknown (401
 * TETHER_ERR_AUTH_INVALID instead of _EXPIRED / _REVOKED).
 */
export interface SessionTokenStore {
  put(record: SessionTokenRecord): Promise<void>;
  /** The record with this digest, revoked and expired ones included while kept. */
  findByDigest(digest: string): Promise<SessionTokenRecord | undefined>;
  /** Marks one token of the session revoked (idempotent). False: the session has no token with that id. */
  revokeOne(sessionId: string, tokenId: string, atMs: number): Promise<boolean>;
  /** Marks every token of the session revoked; returns how many were live (not revoked, not expired). */
  revokeSession(sessionId: string, atMs: number): Promise<number>;
}

/** How long an expired or revoked token's record is kept, to answer _EXPIRED / _REVOKED rather than _INVALID. */
export const TOMBSTONE_RETENTION_MS = 60 * 60 * 1000;
/** The memory store sweeps forgettable records at most this often, on a write. */
const SWEEP_INTERVAL_MS = 60 * 1000;

/** One process's session tokens: enough for one orchestrator replica. */
export class MemorySessionTokenStore implements SessionTokenStore {
  private readonly byDigest = new Map<string, SessionTokenRecord>();
  private readonly digestsBySession = new Map<string, Set<string>>();
  private lastSweepMs = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async put(record: SessionTokenRecord): Promise<void> {
    this.sweep();
    this.byDigest.set(record.digest, { ...record });
    let digests = this.digestsBySession.get(record.sessionId);
    if (!digests) this.digestsBySession.set(record.sessionId, (digests = new Set()));
    digests.add(record.digest);
  }

  async findByDigest(digest: string): Promise<SessionTokenRecord | undefined> {
    const record = this.byDigest.get(digest);
    return record ? { ...record } : undefined;
  }

  async revokeOne(sessionId: string, tokenId: string, atMs: number): Promise<boolean> {
    for (const record of this.recordsOf(sessionId)) {
      if (record.tokenId !== tokenId) continue;
      record.revokedAtMs ??= atMs;
      return true;
    }
    return false;
  }

  async revokeSession(sessionId: string, atMs: number): Promise<number> {
    let live = 0;
    for (const record of this.recordsOf(sessionId)) {
      if (record.revokedAtMs === undefined && record.expiresAtMs > atMs) live += 1;
      record.revokedAtMs ??= atMs;
    }
    return live;
  }

  /** Records held (tests and metrics). */
  get size(): number {
    return this.byDigest.size;
  }

  private *recordsOf(sessionId: string): Generator<SessionTokenRecord> {
    for (const digest of this.digestsBySession.get(sessionId) ?? []) {
      const record = this.byDigest.get(digest);
      if (record) yield record;
    }
  }

  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweepMs < SWEEP_INTERVAL_MS) return;
    this.lastSweepMs = now;
    for (const [digest, record] of this.byDigest) {
      if (record.expiresAtMs + TOMBSTONE_RETENTION_MS > now) continue;
      this.byDigest.delete(digest);
      const digests = this.digestsBySession.get(record.sessionId);
      digests?.delete(digest);
      if (digests?.size === 0) this.digestsBySession.delete(record.sessionId);
    }
  }
}
