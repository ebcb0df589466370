import { randomUUID } from "node:crypto";
import { ErrorCodes, sessionNotFound, tetherError } from "../errors.js";
import { Session, type SessionDeps } from "./session.js";

export interface SessionRegistryDeps extends Omit<SessionDeps, "onDisposed" | "idleTimeoutS"> {
  /** TETHER_IDLE_TIMEOUT_S: the default of sessions created without `idleTimeoutS`. */
  defaultIdleTimeoutS: number;
  /** TETHER_MAX_SESSIONS_PER_TENANT. */
  maxSessionsPerTenant: number;
}

export interface CreateSessionOptions {
  /** Overrides TETHER_IDLE_TIMEOUT_S for this session. */
  idleTimeoutS?: number;
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
  private readonly addedListeners: ((session: Session) => void)[] = [];

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
    const id = `ses_${randomUUID().replaceAll("-", "")}`;
    const { defaultIdleTimeoutS, maxSessionsPerTenant: _max, ...deps } = this.deps;
    const session = new Session(id, tenant, metadata, {
      ...deps,
      idleTimeoutS: options.idleTimeoutS ?? defaultIdleTimeoutS,
      onDisposed: (s, moved) => this.remove(s, moved),
    });
    session.reserveStart();
    this.track(session);
    return session;
  }

  private track(session: Session): void {
    this.sessions.set(session.id, session);
    let ids = this.idsByTenant.get(session.tenant);
    if (!ids) this.idsByTenant.set(session.tenant, (ids = new Set()));
    ids.add(session.id);
    for (const listener of this.addedListeners) listener(session);
  }

  /** Calls `listener` for each session created or adopted here. */
  onAdded(listener: (session: Session) => void): void {
    this.addedListeners.push(listener);
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

  /**
   * A session another replica served, continued here (cluster takeover):
   * built like a new one, then given the restored state by `adopt`.
   */
  adopt(id: string, tenant: string, metadata: Record<string, string>, idleTimeoutS: number, adopt: (session: Session) => void): Session {
    const existing = this.sessions.get(id);
    if (existing) return existing;
    const { defaultIdleTimeoutS: _default, maxSessionsPerTenant: _max, ...deps } = this.deps;
    const session = new Session(id, tenant, metadata, { ...deps, idleTimeoutS, onDisposed: (s, moved) => this.remove(s, moved) });
    adopt(session);
    this.track(session);
    return session;
  }

  /** The session if this replica serves it, whatever its tenant (cluster routing). */
  local(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** Every session this replica serves. */
  all(): Session[] {
    return [...this.sessions.values()];
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
