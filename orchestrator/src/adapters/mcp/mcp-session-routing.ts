import type { Cluster } from "../../cluster/cluster.js";
import { ownerMoving, type Route } from "../../cluster/front-router.js";
import type { AdapterBindings, McpSessionRecord } from "../../store/adapter-bindings.js";
import type { McpSessions } from "./mcp-sessions.js";

export interface McpRoutingDeps {
  cluster: Cluster;
  store: AdapterBindings;
  sessions: McpSessions;
}

/** How long a request waits for a Tether session a draining replica is handing over (it released the MCP session a moment before). */
const HAND_OVER_WAIT_MS = 2000;
const HAND_OVER_POLL_MS = 100;

/**
 * Where a request for an MCP session this replica does not hold is served,
 * in a cluster: undefined to serve it here (the session was just taken over,
 * or is unknown and the handler answers 404), else the route to pass it on.
 * A live holder gets it, even while draining (it still serves the session
 * until it lets it go). A session let go (a drain) or whose replica is gone
 * (kill -9) moves next to its Tether session: the replica owning that one
 * takes it over, adopting the Tether session first if nobody alive has it.
 */
export async function routeMcpRequest(id: string, tenant: string, deps: McpRoutingDeps): Promise<Exclude<Route, { kind: "local" }> | undefined> {
  const inFlight = deps.sessions.takeOverInFlight(id);
  if (inFlight) {
    await inFlight;
    return undefined;
  }
  const record = await deps.store.getMcpSession(id);
  if (!record || record.tenant !== tenant) return undefined;
  const holder = await liveHolder(record, deps.cluster);
  if (holder) return holder;
  const route = await whereItGoes(record, deps.cluster);
  if (route.kind !== "local") return route;
  // Another replica moved it first: the client's retry finds it there.
  if (!(await deps.sessions.takeOver(id, record)) && !deps.sessions.find(id, tenant)) return { kind: "refuse", error: ownerMoving() };
  return undefined;
}

/**
 * Takes over the MCP sessions nobody holds (let go by a drain, or their
 * replica died) whose Tether session this replica serves or may adopt, so
 * that their idle timeout runs even if their client never comes back (else
 * their Tether session, handed over with them, would never be deleted).
 * Every replica runs it now and then; a record moves only once.
 */
export async function takeOverOrphanedMcpSessions(deps: McpRoutingDeps): Promise<number> {
  let taken = 0;
  // A draining replica takes on nothing.
  if (deps.cluster.presence.isDraining) return taken;
  for (const [id, record] of await deps.store.listMcpSessions()) {
    if (deps.sessions.find(id, record.tenant) || deps.sessions.takeOverInFlight(id)) continue;
    if (await liveHolder(record, deps.cluster)) continue;
    const route = record.tetherSessionId === null ? await deps.cluster.routeNewWork() : await deps.cluster.routeSession(record.tetherSessionId);
    // The replica serving its Tether session takes it, on its own sweep.
    if (route.kind !== "local") continue;
    if (await deps.sessions.takeOver(id, record)) taken += 1;
  }
  return taken;
}

/** The other replica holding the session, while it lives (draining or not); undefined when it let the session go or is gone. */
async function liveHolder(record: McpSessionRecord, cluster: Cluster): Promise<Exclude<Route, { kind: "local" }> | undefined> {
  if (record.replicaId === "" || record.replicaId === cluster.replicaId) return undefined;
  const route = await cluster.routeReplica(record.replicaId);
  return route && route.kind !== "local" ? route : undefined;
}

/** The replica that should hold a moving MCP session: the one serving its Tether session (none yet: any that is not draining). */
async function whereItGoes(record: McpSessionRecord, cluster: Cluster): Promise<Route> {
  if (record.tetherSessionId === null) return cluster.routeNewWork();
  const deadline = Date.now() + HAND_OVER_WAIT_MS;
  for (;;) {
    const route = await cluster.routeSession(record.tetherSessionId);
    if (route.kind !== "forward" || !route.replica.draining || Date.now() >= deadline) return route;
    await new Promise((resolve) => setTimeout(resolve, HAND_OVER_POLL_MS));
  }
}
