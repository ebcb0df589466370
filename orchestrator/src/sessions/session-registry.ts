import { randomUUID } from "node:crypto";
import type { SessionStatus } from "@tether/shared";
import { DEFAULT_PROFILE, type WorkerProfile } from "../config-profiles.js";
import { ErrorCodes, sessionNotFound, tetherError } from "../errors.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import { Session, type SessionDeps } from "./session.js";

export interface SessionRegistryDeps extends Omit<SessionDeps, "onDisposed" | "idleTimeoutS" | "createWorker" | "profile"> {
  /** A new, unstarted worker launched for `sessionId` with the session's profile (absent: default). */
  createWorker(sessionId: string, profile?: WorkerProfile): WorkerHandle;
  /** TETHER_IDLE_TIMEOUT_S: the default of sessions created without `idleTimeoutS`. */
  defaultIdleTimeoutS: number;
  /** TETHER_MAX_SESSIONS_PER_TENANT. */
  maxSessionsPerTenant: number;
}

export interface CreateSessionOptions {
  /** Overrides TETHER_IDLE_TIMEOUT_S for this session. */
  idleTimeoutS?: number;
  /** The worker profile (already resolved by name); absent: default. */
  profile?: WorkerProfile;
  /** A pool worker of this replica that another replica claimed for this create (cluster): taken first when still idle. */
  pooledLaunchId?: string;
}

/** A tenant over quota is told to retry this much later (sessions go away only when deleted). */
const QUOTA_RETRY_AFTER_S = 30;

/**
 * Every live session, scoped by tenant: a session id from another tenant is
 * indistinguishable from one that does not exist.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly idsByTenant = new Map<string, Set<string>>();
  private readonly removalListeners: ((session: Session) => void)[] = [];

  constructor(private readonly deps: SessionRegistryDeps) {}

  /**
   * Creates a session in `starting` with its first worker reserved (a pooled
   * one, or a start slot); call `start()` on it. Throws 429
   * TETHER_ERR_SESSION_QUOTA_EXCEEDED or TETHER_ERR_SESSION_START_LIMIT, with `retryAfterS`.
   */
  create(tenant: string, metadata: Record<string, string> = {}, options: CreateSessionOptions = {}): Session {
    const held = this.list(tenant).filter((session) => session.state !== "failed").length;
    if (held >= this.deps.maxSessionsPerTenant) {
      throw tetherError(ErrorCodes.SESSION_QUOTA_EXCEEDED, `The tenant already holds ${held} sessions; the limit is ${this.deps.maxSessionsPerTenant}.`, {
        retryAfterS: QUOTA_RETRY_AFTER_S,
        hint: "Delete sessions you no longer need (DELETE /v1/sessions/:id), or raise TETHER_MAX_SESSIONS_PER_TENANT.",
      });
    }
    const session = this.build(`ses_${randomUUID().replaceAll("-", "")}`, tenant, metadata, options);
    session.reserveStart(options.pooledLaunchId);
    this.track(session);
    return session;
  }

  /**
   * A session another replica served, continued here (cluster takeover):
   * built like a new one, then given the restored state by `adopt`.
   */
  adopt(id: string, tenant: string, metadata: Record<string, string>, options: CreateSessionOptions, adopt: (session: Session) => void): Session {
    const existing = this.sessions.get(id);
    if (existing) return existing;
    const session = this.build(id, tenant, metadata, options);
    adopt(session);
    this.track(session);
    return session;
  }

  private build(id: string, tenant: string, metadata: Record<string, string>, options: CreateSessionOptions): Session {
    const { defaultIdleTimeoutS, maxSessionsPerTenant: _max, createWorker, ...deps } = this.deps;
    const profile = options.profile;
    const pooled = profile === undefined || profile.name === DEFAULT_PROFILE;
    return new Session(id, tenant, metadata, {
      ...deps,
      // The warm pool holds default-profile workers only: another profile always starts cold.
      pool: pooled ? deps.pool : undefined,
      createWorker: (sessionId) => createWorker(sessionId, profile),
      profile: profile?.name ?? DEFAULT_PROFILE,
      idleTimeoutS: options.idleTimeoutS ?? defaultIdleTimeoutS,
      onDisposed: (s, moved) => this.remove(s, moved),
    });
  }

  private track(session: Session): void {
    this.sessions.set(session.id, session);
    let ids = this.idsByTenant.get(session.tenant);
    if (!ids) this.idsByTenant.set(session.tenant, (ids = new Set()));
    ids.add(session.id);
  }

  /** The session if this replica serves it, whatever its tenant (cluster routing). */
  local(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** Every session this replica serves. */
  all(): Session[] {
    return [...this.sessions.values()];
  }

  /** The tenant's session, or 404 TETHER_ERR_SESSION_NOT_FOUND. */
  get(tenant: string, id: string): Session {
    const session = this.sessions.get(id);
    if (!session || session.tenant !== tenant) throw sessionNotFound(id);
    return session;
  }

  list(tenant: string): Session[] {
    const ids = this.idsByTenant.get(tenant);
    if (!ids) return [];
    const out: Session[] = [];
    for (const id of ids) {
      const session = this.sessions.get(id);
      if (session) out.push(session);
    }
    return out;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Sessions per client-visible status, every tenant's (metrics read it at each scrape). */
  countByStatus(): Map<SessionStatus, number> {
    const counts = new Map<SessionStatus, number>();
    for (const session of this.sessions.values()) counts.set(session.state, (counts.get(session.state) ?? 0) + 1);
    return counts;
  }

  /** Calls `listener` for each session that goes away: deleted, or failed with nobody holding its id (session tokens die with it). */
  onRemoved(listener: (session: Session) => void): void {
    this.removalListeners.push(listener);
  }

  /** Shutdown: every session lets go of its worker (idle ones are snapshotted first); snapshots are kept for a restart or another replica. */
  async releaseAll(reason: string): Promise<void> {
    await Promise.allSettled([...this.sessions.values()].map((session) => session.release(reason)));
  }

  /** `moved`: another replica serves it now; it is gone from here only (nothing of it is revoked or deleted). */
  private remove(session: Session, moved = false): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    const ids = this.idsByTenant.get(session.tenant);
    ids?.delete(session.id);
    if (ids?.size === 0) this.idsByTenant.delete(session.tenant);
    if (moved) return;
    for (const listener of this.removalListeners) listener(session);
  }
}
