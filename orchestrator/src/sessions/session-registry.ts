import { randomUUID } from "node:crypto";
import { sessionNotFound } from "../errors.js";
import { Session, type SessionDeps } from "./session.js";

export type SessionRegistryDeps = Omit<SessionDeps, "onDisposed">;

/**
 * Every live session, scoped by tenant: a session id from another tenant is
 * indistinguishable from one that does not exist.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly idsByTenant = new Map<string, Set<string>>();

  constructor(private readonly deps: SessionRegistryDeps) {}

  /** Creates a session in `starting`; call `start()` on it to launch the worker. */
  create(tenant: string, metadata: Record<string, string>): Session {
    const id = `ses_${randomUUID().replaceAll("-", "")}`;
    const launchId = `lch_${randomUUID().replaceAll("-", "")}`;
    const session = new Session(id, tenant, launchId, metadata, { ...this.deps, onDisposed: (s) => this.remove(s) });
    this.sessions.set(id, session);
    let ids = this.idsByTenant.get(tenant);
    if (!ids) this.idsByTenant.set(tenant, (ids = new Set()));
    ids.add(id);
    return session;
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

  /** The session a worker's join token was minted for, when it still exists. */
  forWorker(sessionId: string, launchId: string): Session | undefined {
    const session = this.sessions.get(sessionId);
    return session && session.launchId === launchId ? session : undefined;
  }

  get size(): number {
    return this.sessions.size;
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.allSettled([...this.sessions.values()].map((session) => session.stop(reason)));
  }

  private remove(session: Session): void {
    if (this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    const ids = this.idsByTenant.get(session.tenant);
    ids?.delete(session.id);
    if (ids?.size === 0) this.idsByTenant.delete(session.tenant);
  }
}
