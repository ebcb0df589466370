import { randomUUID } from "node:crypto";
import type { Cluster } from "../../cluster/cluster.js";
import { ownerMoving, type Route } from "../../cluster/front-router.js";
import type { SessionRegistry } from "../../sessions/session-registry.js";
import type { AdapterBindings, IdentifierBinding } from "../../store/adapter-bindings.js";
import { SessionSlot, type SlotHooks } from "../common/session-slot.js";

/** Past this many identifiers a tenant's local map drops those whose session is not here (deleted, failed, moved). */
const PRUNE_ABOVE = 1000;
/** The replica id bindings carry in a single process (no cluster). */
const SOLE_REPLICA = "local";

/** One identifier's session as the dynamic-sessions API shows it. */
export interface IdentifiedSession {
  readonly identifier: string;
  readonly slot: SessionSlot;
  readonly createdAt: Date;
  readonly etag: string;
  /** Whether the kernel sees the workspace at /mnt/data: probed once, when a failure mentions it. */
  dataMounted: boolean | undefined;
}

export interface IdentifiedSessionsDeps {
  registry: SessionRegistry;
  hooks: SlotHooks;
  /** identifier → Tether session, shared by every replica (memory without a cluster). */
  bindings: AdapterBindings;
  cluster: Cluster | undefined;
}

/**
 * identifier → Tether session, per tenant. An identifier names a session
 * private to the tenant that used it, created on first use (as Azure does:
 * there is no create call); a session deleted meanwhile (DELETE session,
 * REST DELETE) is recreated by the next call. The binding lives in the
 * store (until DELETE session): in a cluster, `place` sends a request to
 * the replica serving the identifier's session, and the first request for
 * an identifier claims it atomically, so concurrent first requests on
 * several replicas end up in one session. The Tether session behind one
 * scales to zero when idle and resumes (files kept) on the next call.
 */
export class IdentifiedSessions {
  private readonly byTenant = new Map<string, Map<string, IdentifiedSession>>();
  private readonly replicaId: string;

  constructor(private readonly deps: IdentifiedSessionsDeps) {
    this.replicaId = deps.cluster?.replicaId ?? SOLE_REPLICA;
  }

  /**
   * Where a request about `identifier` is served: where its session is
   * (forwarded to its owner, an orphan adopted here), where it is being
   * created, or here. `creates`: the request starts the session when it has
   * none, so an unbound identifier is claimed for this replica first.
   */
  async place(tenant: string, identifier: string, creates: boolean): Promise<Route> {
    const cluster = this.deps.cluster;
    if (!cluster) return { kind: "local" };
    let binding = await this.deps.bindings.getIdentifier(tenant, identifier);
    if (!binding) {
      if (!creates) return { kind: "local" };
      const claim = await this.deps.bindings.claimIdentifier(tenant, identifier, this.fresh());
      if (claim.won) return { kind: "local" };
      binding = claim.binding;
    }
    // Being created where it was claimed (here again if that replica is gone).
    if (binding.sessionId === null) return (await cluster.routeReplica(binding.replicaId)) ?? { kind: "local" };
    return cluster.routeSession(binding.sessionId);
  }

  /** The tenant's session for `identifier`, bound now if it has none (its Tether session starts on first use). */
  async resolve(tenant: string, identifier: string): Promise<IdentifiedSession> {
    const { bindings } = this.deps;
    const binding = (await bindings.getIdentifier(tenant, identifier)) ?? (await bindings.claimIdentifier(tenant, identifier, this.fresh())).binding;
    const entry = this.entry(tenant, identifier, binding);
    await this.assertServedHere(binding);
    return entry;
  }

  /** The tenant's session for `identifier` if one was used and is served here. */
  async find(tenant: string, identifier: string): Promise<IdentifiedSession | undefined> {
    const binding = await this.deps.bindings.getIdentifier(tenant, identifier);
    if (!binding || binding.sessionId === null) return undefined;
    const entry = this.entry(tenant, identifier, binding);
    return entry.slot.peek() ? entry : undefined;
  }

  /** Deletes the identifier's session (its worker, kernel and files) and its binding; false when there was none. */
  async delete(tenant: string, identifier: string): Promise<boolean> {
    const binding = await this.deps.bindings.getIdentifier(tenant, identifier);
    const sessions = this.byTenant.get(tenant);
    const entry = sessions?.get(identifier);
    if (!binding && !entry) return false;
    if (sessions && entry) {
      sessions.delete(identifier);
      if (sessions.size === 0) this.byTenant.delete(tenant);
    }
    const slot = entry?.slot ?? new SessionSlot(this.deps.registry, tenant, {}, this.deps.hooks);
    if (binding) slot.follow(binding.sessionId);
    const existed = slot.peek() !== undefined;
    await slot.release("deleted through the dynamic-sessions API");
    if (binding) await this.deps.bindings.unbindIdentifier(tenant, identifier, binding.sessionId);
    return existed;
  }

  /**
   * At shutdown. One process: the sessions are deleted with it. A cluster:
   * they are handed over with the replica's other sessions, and their
   * identifiers keep naming them.
   */
  async closeAll(reason: string): Promise<void> {
    const entries = [...this.byTenant.values()].flatMap((sessions) => [...sessions.values()]);
    this.byTenant.clear();
    if (this.deps.cluster) return;
    await Promise.allSettled(entries.map((entry) => entry.slot.release(reason)));
  }

  /** The local entry for a binding, following the session it names now. */
  private entry(tenant: string, identifier: string, binding: IdentifierBinding): IdentifiedSession {
    let sessions = this.byTenant.get(tenant);
    if (!sessions) this.byTenant.set(tenant, (sessions = new Map()));
    let entry = sessions.get(identifier);
    if (!entry || entry.etag !== binding.etag) {
      if (sessions.size >= PRUNE_ABOVE) prune(sessions);
      entry = {
        identifier,
        slot: new SessionSlot(this.deps.registry, tenant, { client: "dynamic-sessions", identifier }, { ...this.deps.hooks, bind: (previousId, session) => this.bind(tenant, identifier, binding, previousId, session.id) }),
        createdAt: new Date(binding.createdAt),
        etag: binding.etag,
        dataMounted: undefined,
      };
      sessions.set(identifier, entry);
    }
    entry.slot.follow(binding.sessionId);
    return entry;
  }

  /** A new session for the identifier: recorded only while the binding still names the one it replaces. */
  private async bind(tenant: string, identifier: string, binding: IdentifierBinding, previousId: string | null, sessionId: string): Promise<void> {
    const next: IdentifierBinding = { ...binding, sessionId, replicaId: this.replicaId };
    if (!(await this.deps.bindings.rebindIdentifier(tenant, identifier, previousId, next))) throw ownerMoving();
  }

  /** Routed here, but the session lives on another replica now (it moved meanwhile): the client retries. */
  private async assertServedHere(binding: IdentifierBinding): Promise<void> {
    const sessionId = binding.sessionId;
    if (!this.deps.cluster || sessionId === null || this.deps.registry.local(sessionId)) return;
    const lease = await this.deps.cluster.routeSession(sessionId);
    if (lease.kind !== "local") throw ownerMoving();
  }

  private fresh(): IdentifierBinding {
    return { sessionId: null, replicaId: this.replicaId, createdAt: new Date().toISOString(), etag: randomUUID() };
  }
}

function prune(sessions: Map<string, IdentifiedSession>): void {
  for (const [identifier, entry] of sessions) if (!entry.slot.peek()) sessions.delete(identifier);
}
