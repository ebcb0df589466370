import { randomUUID } from "node:crypto";
import type { SessionRegistry } from "../../sessions/session-registry.js";
import { SessionSlot } from "../common/session-slot.js";

/** Past this many identifiers a tenant's map drops those whose session is gone (deleted elsewhere, failed). */
const PRUNE_ABOVE = 1000;

/** One identifier's session as the dynamic-sessions API shows it. */
export interface IdentifiedSession {
  readonly identifier: string;
  readonly slot: SessionSlot;
  readonly createdAt: Date;
  lastAccessedAt: Date;
  etag: string;
  /** Whether the kernel sees the workspace at /mnt/data: probed once, when a failure mentions it. */
  dataMounted: boolean | undefined;
}

/**
 * identifier → Tether session, per tenant. An identifier names a session
 * private to the tenant that used it, created on first use (as Azure does:
 * there is no create call); a session deleted meanwhile (DELETE session,
 * REST DELETE) is recreated by the next call. Entries live until DELETE
 * session: the Tether session behind one scales to zero when idle and
 * resumes (files kept) on the next call.
 */
export class IdentifiedSessions {
  private readonly byTenant = new Map<string, Map<string, IdentifiedSession>>();

  constructor(private readonly registry: SessionRegistry) {}

  /** The tenant's session for `identifier`, made now if it has none (its Tether session starts on first use). */
  resolve(tenant: string, identifier: string): IdentifiedSession {
    let sessions = this.byTenant.get(tenant);
    if (!sessions) this.byTenant.set(tenant, (sessions = new Map()));
    let entry = sessions.get(identifier);
    if (!entry) {
      if (sessions.size >= PRUNE_ABOVE) prune(sessions);
      const now = new Date();
      entry = {
        identifier,
        slot: new SessionSlot(this.registry, tenant, { client: "dynamic-sessions", identifier }),
        createdAt: now,
        lastAccessedAt: now,
        etag: randomUUID(),
        dataMounted: undefined,
      };
      sessions.set(identifier, entry);
    }
    entry.lastAccessedAt = new Date();
    return entry;
  }

  /** The tenant's session for `identifier` if one was used and still exists. */
  find(tenant: string, identifier: string): IdentifiedSession | undefined {
    const entry = this.byTenant.get(tenant)?.get(identifier);
    return entry?.slot.peek() ? entry : undefined;
  }

  /** Deletes the identifier's session (its worker, kernel and files); false when there was none. */
  async delete(tenant: string, identifier: string): Promise<boolean> {
    const sessions = this.byTenant.get(tenant);
    const entry = sessions?.get(identifier);
    if (!sessions || !entry) return false;
    sessions.delete(identifier);
    if (sessions.size === 0) this.byTenant.delete(tenant);
    const existed = entry.slot.peek() !== undefined;
    await entry.slot.release("deleted through the dynamic-sessions API");
    return existed;
  }

  async closeAll(reason: string): Promise<void> {
    const entries = [...this.byTenant.values()].flatMap((sessions) => [...sessions.values()]);
    this.byTenant.clear();
    await Promise.allSettled(entries.map((entry) => entry.slot.release(reason)));
  }
}

function prune(sessions: Map<string, IdentifiedSession>): void {
  for (const [identifier, entry] of sessions) if (!entry.slot.peek()) sessions.delete(identifier);
}
