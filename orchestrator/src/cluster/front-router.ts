import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { ErrorCodes, TetherError, errorMessage, tetherError } from "../errors.js";
import type { SessionRegistry } from "../sessions/session-registry.js";
import type { ClusterStore, ReplicaInfo } from "../store/cluster-store.js";
import { WORKER_GATEWAY_PATH } from "../workers/worker-gateway.js";
import { FORWARDED_HEADER, forwardRequest, forwardUpgrade, refuseRequest, refuseUpgrade, unreachableReason } from "./forward.js";
import type { ReplicaPresence } from "./replica-presence.js";

/** Where one request is served. */
export type Route = { kind: "local" } | { kind: "forward"; replica: ReplicaInfo } | { kind: "refuse"; error: TetherError };

export interface FrontRouterDeps {
  store: ClusterStore;
  presence: ReplicaPresence;
  registry: SessionRegistry;
  /** Takes a session nobody (alive) owns: acquires its lease and adopts it here; false when another replica got it first. */
  adopt(sessionId: string): Promise<boolean>;
  logger: Logger;
}

const SESSION_PATH = /^\/v1\/sessions\/(ses_[A-Za-z0-9]{1,64})(?:[/?]|$)/;
const LAUNCH_PARAM = /[?&]launch=(lch_[A-Za-z0-9]{1,64})(?:&|$)/;

/**
 * Any replica serves any request: before fastify sees a request (or a
 * websocket upgrade), the router finds which replica owns its session
 * (a path under /v1/sessions/:id, or a worker's `?launch=`). Local ones pass
 * through; another live replica's are forwarded to its address (drawn in
 * docs/internals.md); a session whose replica is gone is adopted here. A
 * draining replica takes on nothing new: it forwards creates and orphans to
 * a replica that stays.
 */
export class FrontRouter {
  private readonly routing = new Map<string, Promise<Route>>();

  constructor(private readonly deps: FrontRouterDeps) {}

  /** Puts the router in front of the server's request and upgrade listeners (fastify's, @fastify/websocket's). */
  install(server: Server): void {
    const onRequest = server.listeners("request");
    const onUpgrade = server.listeners("upgrade");
    server.removeAllListeners("request");
    server.removeAllListeners("upgrade");
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      void this.serve(request, (route) => {
        if (route.kind === "local") for (const listener of onRequest) listener.call(server, request, response);
        else this.pass(request, response, route);
      });
    });
    server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.serve(request, (route) => {
        if (route.kind === "local") for (const listener of onUpgrade) listener.call(server, request, socket, head);
        else if (route.kind === "refuse") refuseUpgrade(socket, route.error);
        else forwardUpgrade(request, socket, head, new URL(route.replica.address), this.deps.presence.replicaId, (cause) => refuseUpgrade(socket, ownerUnavailable(route.replica, cause)));
      });
    });
  }

  /**
   * Answers a request that is not served here: forwarded to its replica, or
   * refused. A request another replica already forwarded is refused as
   * moving (never forwarded twice). Adapters call it from inside fastify,
   * once they know (from the store) which session their request is about.
   */
  pass(request: IncomingMessage, response: ServerResponse, route: Exclude<Route, { kind: "local" }>): void {
    if (route.kind === "forward" && request.headers[FORWARDED_HEADER] !== undefined) route = { kind: "refuse", error: ownerMoving() };
    if (route.kind === "refuse") refuseRequest(response, route.error);
    else forwardRequest(request, response, new URL(route.replica.address), this.deps.presence.replicaId, (cause) => refuseRequest(response, ownerUnavailable(route.replica, cause)));
  }

  /** A replica by id as a route: local for this one, forward while it announces itself, undefined once it is gone. */
  async routeReplica(replicaId: string): Promise<Route | undefined> {
    if (replicaId === this.deps.presence.replicaId) return { kind: "local" };
    const replica = await this.deps.store.replica(replicaId);
    return replica ? { kind: "forward", replica } : undefined;
  }

  private async serve(request: IncomingMessage, then: (route: Route) => void): Promise<void> {
    let route: Route;
    try {
      route = await this.route(request);
    } catch (error) {
      route = { kind: "refuse", error: error instanceof TetherError ? error : tetherError(ErrorCodes.INTERNAL, errorMessage(error), { cause: error }) };
    }
    // A forwarded request is never forwarded again: ownership moved in between, so the caller retries.
    if (route.kind === "forward" && request.headers[FORWARDED_HEADER] !== undefined) route = { kind: "refuse", error: ownerMoving() };
    then(route);
  }

  /** Which replica serves `request`. */
  async route(request: IncomingMessage): Promise<Route> {
    const url = request.url ?? "/";
    const sessionId = SESSION_PATH.exec(url)?.[1];
    if (sessionId) return this.routeSession(sessionId);
    if (url.startsWith(WORKER_GATEWAY_PATH)) {
      const launchId = LAUNCH_PARAM.exec(url)?.[1];
      return launchId ? this.routeLaunch(launchId) : { kind: "local" };
    }
    // Creating a session: a draining replica sends it to one that stays.
    if (this.deps.presence.isDraining && request.method === "POST" && /^\/v1\/sessions\/?(?:\?|$)/.test(url)) return this.elsewhere();
    return { kind: "local" };
  }

  /** One routing per session at a time: concurrent requests for an orphan adopt it once. */
  routeSession(sessionId: string): Promise<Route> {
    if (this.deps.registry.local(sessionId)) return Promise.resolve({ kind: "local" });
    let pending = this.routing.get(sessionId);
    if (!pending) {
      pending = this.findOwner(sessionId).finally(() => this.routing.delete(sessionId));
      this.routing.set(sessionId, pending);
    }
    return pending;
  }

  private async findOwner(sessionId: string): Promise<Route> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.deps.registry.local(sessionId)) return { kind: "local" };
      const lease = await this.deps.store.leaseOf(sessionId);
      if (lease && lease.replicaId !== this.deps.presence.replicaId) {
        const owner = await this.deps.store.replica(lease.replicaId);
        if (owner) return { kind: "forward", replica: owner };
      }
      // Nobody alive owns it (or it is unknown: the local 404 says so).
      if (!lease && !(await this.deps.store.getSession(sessionId))) return { kind: "local" };
      if (this.deps.presence.isDraining) return this.elsewhere();
      if (await this.deps.adopt(sessionId)) return { kind: "local" };
    }
    return { kind: "refuse", error: ownerMoving() };
  }

  private async routeLaunch(launchId: string): Promise<Route> {
    const launch = await this.deps.store.getLaunch(launchId);
    // Unknown: the gateway refuses the token (or the resume) with its own code.
    if (!launch) return { kind: "local" };
    if (launch.sessionId) return this.routeSession(launch.sessionId);
    if (launch.replicaId === this.deps.presence.replicaId) return { kind: "local" };
    const owner = await this.deps.store.replica(launch.replicaId);
    return owner ? { kind: "forward", replica: owner } : { kind: "local" };
  }

  /** Where new work goes: here, or (while this replica drains) to a replica that stays. */
  async routeNewWork(): Promise<Route> {
    return this.deps.presence.isDraining ? this.elsewhere() : { kind: "local" };
  }

  /** Any live replica but this one that is not draining. */
  private async elsewhere(): Promise<Route> {
    const others = (await this.deps.store.replicas()).filter((replica) => replica.replicaId !== this.deps.presence.replicaId && !replica.draining);
    const replica = others[Math.floor(Math.random() * others.length)];
    return replica ? { kind: "forward", replica } : { kind: "refuse", error: ownerMoving() };
  }
}

export function ownerMoving(): TetherError {
  return tetherError(ErrorCodes.SESSION_OWNER_UNAVAILABLE, "The session is moving between replicas right now.", { retryAfterS: 1, hint: "Retry in a second." });
}

function ownerUnavailable(replica: ReplicaInfo, cause: Error): TetherError {
  return tetherError(ErrorCodes.SESSION_OWNER_UNAVAILABLE, `The replica serving this session (${replica.replicaId}) cannot be reached (${unreachableReason(cause)}).`, {
    retryAfterS: 1,
    hint: "Retry in a second: if that replica is gone, another one takes the session over within TETHER_REPLICA_TTL_MS.",
  });
}
