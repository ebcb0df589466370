import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import type { SessionInfo, WorkerResume } from "@tether/shared";
import type { ClusterConfig } from "../config-cluster.js";
import type { WorkerProfile } from "../config-profiles.js";
import { ErrorCodes, tetherError } from "../errors.js";
import type { ExecutionRequest, ExecutionSink, Session } from "../sessions/session.js";
import type { SessionRegistry } from "../sessions/session-registry.js";
import { FencedError, sameLease, type ClusterStore, type Lease } from "../store/cluster-store.js";
import type { JoinTokenBinding } from "../workers/join-tokens.js";
import type { StartLimiter } from "../workers/start-limiter.js";
import type { WarmPool } from "../workers/warm-pool.js";
import type { WorkerConnection } from "../workers/worker-connection.js";
import type { TakeoverResult } from "../workers/worker-gateway.js";
import type { AdoptedWorker } from "./adopted-worker.js";
import { handOverAll } from "./hand-over.js";
import { FrontRouter, type Route } from "./front-router.js";
import { PeerPool } from "./peer-pool.js";
import { ReplicaPresence } from "./replica-presence.js";
import { ReplicatedSession } from "./replicated-session.js";
import { adoptSession } from "./session-adoption.js";

export interface ClusterDeps {
  store: ClusterStore;
  replicaId: string;
  config: ClusterConfig;
  registry: SessionRegistry;
  limiter: StartLimiter;
  /** This replica's warm pool: its idle workers are listed for the whole cluster. */
  pool: WarmPool | undefined;
  /** TETHER_PROFILES: an adopted session keeps its profile. */
  profiles: ReadonlyMap<string, WorkerProfile>;
  heartbeatIntervalMs: number;
  maxSessionsPerTenant: number;
  maxConcurrentStarts: number;
  /** How long launch routes and start slots live in the store. */
  launchTtlMs: number;
  /** Where other replicas reach this one, known once it listens. */
  replicaUrl: () => string;
  /** False when workers end with this replica (a docker relay): a hand-over then snapshots first. */
  workersOutliveReplica: boolean;
  logger: Logger;
}

/** How often sessions check for worker frames whose acks wait on persistence (frames that made no event). */
const TICK_MS = 500;
/** Every 10 ticks (5 s) a replica lists its idle pool workers again: a claim that never reached it must not hide one for good. */
const POOL_RELIST_TICKS = 10;
/** A tenant over its quota cluster-wide is told to retry this much later. */
const QUOTA_RETRY_AFTER_S = 30;

/**
 * This replica's part in a cluster of orchestrators sharing a Redis
 * (TETHER_REDIS_URL): its presence, the router in front of its server, the
 * replication of the sessions it owns, the adoption of sessions whose
 * replica is gone, cluster-wide quotas and start limits, and the hand-over
 * at shutdown. docs/internals.md draws it.
 */
export class Cluster {
  readonly presence: ReplicaPresence;
  /** The warm pool across replicas: creates use another replica's idle worker when this one has none. */
  readonly peerPool: PeerPool;
  private readonly router: FrontRouter;
  private readonly replicated = new Map<string, ReplicatedSession>();
  private readonly adoptedWorkers = new Map<string, AdoptedWorker>();
  private readonly drainHooks: (() => Promise<void>)[] = [];
  private readonly handOverHooks: ((session: Session) => Promise<void>)[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;

  constructor(private readonly deps: ClusterDeps) {
    this.logger = deps.logger.child({ component: "cluster" });
    this.presence = new ReplicaPresence(deps.replicaId, deps.store, deps.replicaUrl, deps.config.replicaTtlMs, this.logger);
    this.router = new FrontRouter({ store: deps.store, presence: this.presence, registry: deps.registry, adopt: (id) => this.adopt(id), logger: this.logger });
    this.peerPool = new PeerPool({ store: deps.store, replicaId: deps.replicaId, pool: deps.pool, logger: this.logger });
    deps.registry.onRemoved((session) => this.deleted(session));
    this.presence.onLapse(() => void this.verifyOwnership());
    deps.limiter.observe({
      granted: (id) => void deps.store.tryAcquireStartSlot(this.slotId(id), Number.MAX_SAFE_INTEGER, deps.launchTtlMs).catch(() => undefined),
      released: (id) => void deps.store.releaseStartSlot(this.slotId(id)).catch(() => undefined),
    });
  }

  get replicaId(): string {
    return this.presence.replicaId;
  }

  /** Puts the router in front of `server` (before it listens). */
  route(server: Server): void {
    this.router.install(server);
  }

  /** Which replica serves a request about `sessionId` (an adapter's, which names its session only in the store). */
  routeSession(sessionId: string): Promise<Route> {
    return this.router.routeSession(sessionId);
  }

  /** A replica by id: local, forward while it announces itself, undefined once it is gone. */
  routeReplica(replicaId: string): Promise<Route | undefined> {
    return this.router.routeReplica(replicaId);
  }

  /** Forwards (or refuses) a request another replica serves; the caller has hijacked fastify's reply. */
  pass(request: IncomingMessage, response: ServerResponse, route: Exclude<Route, { kind: "local" }>): void {
    this.router.pass(request, response, route);
  }

  /**
   * Runs when a drain begins, before sessions are handed over: state that
   * cannot move (an MCP transport) ends here, with what only it uses.
   */
  beforeHandOver(hook: () => Promise<void>): void {
    this.drainHooks.push(hook);
  }

  /**
   * Runs as a drain hands `session` over, while this replica still owns it:
   * state bound to it (an MCP transport) lets go first, so the next request
   * finds it where the session goes.
   */
  onSessionHandOver(hook: (session: Session) => Promise<void>): void {
    this.handOverHooks.push(hook);
  }

  /** Where new work goes: here, or (while this replica drains) to a replica that stays. */
  routeNewWork(): Promise<Route> {
    return this.router.routeNewWork();
  }

  /** Joins the cluster: the replica answers at its address now. */
  async start(): Promise<void> {
    await this.presence.start();
    this.peerPool.start();
    let ticks = 0;
    this.tickTimer = setInterval(() => {
      for (const replica of this.replicated.values()) replica.tick();
      if (++ticks % POOL_RELIST_TICKS === 0) void this.peerPool.relist();
    }, TICK_MS);
    this.tickTimer.unref();
  }

  /** Refuses a create over the tenant's quota or the start limit, counted across replicas (429 with Retry-After). */
  async admitCreate(tenant: string): Promise<void> {
    const [held, starting] = await Promise.all([this.deps.store.countSessions(tenant), this.deps.store.startSlotsInUse()]);
    if (held >= this.deps.maxSessionsPerTenant) {
      throw tetherError(ErrorCodes.SESSION_QUOTA_EXCEEDED, `The tenant already holds ${held} sessions across the cluster; the limit is ${this.deps.maxSessionsPerTenant}.`, {
        retryAfterS: QUOTA_RETRY_AFTER_S,
        hint: "Delete sessions you no longer need (DELETE /v1/sessions/:id), or raise TETHER_MAX_SESSIONS_PER_TENANT.",
      });
    }
    if (starting >= this.deps.maxConcurrentStarts) {
      throw tetherError(ErrorCodes.SESSION_START_LIMIT, `${starting} workers are already starting across the cluster (TETHER_MAX_CONCURRENT_STARTS).`, {
        retryAfterS: this.deps.limiter.retryAfterS(),
        hint: "Retry after the Retry-After seconds, or raise TETHER_MAX_CONCURRENT_STARTS / TETHER_POOL_SIZE.",
      });
    }
  }

  /** A session just created here: this replica owns it (its record is written before anyone hears its id). */
  async own(session: Session): Promise<void> {
    const lease = await this.deps.store.acquireLease(session.id, this.replicaId);
    if (!lease) throw tetherError(ErrorCodes.INTERNAL, `A new session id '${session.id}' is already owned elsewhere.`);
    const replicated = this.replicate(session, lease);
    await replicated.flushed();
  }

  /**
   * Queues an execution once the store has it: after "accepted", a replica
   * taking the session over runs it. 503 STORE_UNAVAILABLE otherwise, with
   * nothing queued; 503 SESSION_MOVED (retry) when the lease is no longer
   * this replica's (a hand-over released it while the request was on its way).
   */
  async execute(session: Session, request: ExecutionRequest, sink: ExecutionSink | undefined): Promise<void> {
    const replicated = this.replicated.get(session.id);
    if (!replicated) throw sessionMoved(session.id);
    try {
      await replicated.persistQueued(request);
    } catch (error) {
      throw error instanceof FencedError ? sessionMoved(session.id) : error;
    }
    // Handed over while the write was in flight: the next owner runs it (the store has it).
    if (this.replicated.get(session.id) !== replicated) throw sessionMoved(session.id);
    session.execute(request, sink);
  }

  /** The tenant's sessions on every replica: the live view of those here, the records of the others. */
  async listSessions(tenant: string): Promise<SessionInfo[]> {
    const records = await this.deps.store.listSessions(tenant);
    return records.map((record) => {
      const local = this.deps.registry.local(record.info.id);
      return local && local.tenant === tenant ? local.info() : record.info;
    });
  }

  /** A worker joined here: its resume digest goes to the store, for a replica that may take it over. */
  workerJoined(connection: WorkerConnection, binding: JoinTokenBinding): void {
    const resumeDigest = connection.resumeDigest;
    if (!resumeDigest) return;
    this.deps.store
      .putWorker({ workerId: connection.workerId, sessionId: binding.sessionId, launchId: binding.launchId, resumeDigest })
      .catch((error: unknown) => this.logger.warn({ err: error, workerId: connection.workerId }, "could not record the worker for a takeover"));
  }

  /** A resume for a worker this replica never held: an adopted session's worker coming back. */
  takeover(socket: WebSocket, resume: WorkerResume): TakeoverResult | undefined {
    const worker = this.adoptedWorkers.get(resume.workerId);
    if (!worker) return undefined;
    const result = worker.acceptResume(socket, resume);
    if (result.ok) this.adoptedWorkers.delete(resume.workerId);
    return result;
  }

  /**
   * SIGTERM: take on nothing new, hand every session over, leave. The last
   * replica standing has nobody to hand over to, and some launchers' workers
   * end with their replica: then sessions are scaled to zero first (their
   * files are in their snapshots), and the next owner resumes them.
   */
  async drain(): Promise<void> {
    await this.presence.drain();
    await Promise.allSettled(this.drainHooks.map((hook) => hook()));
    const others = await this.deps.store.replicas().catch(() => []);
    const last = !others.some((replica) => replica.replicaId !== this.replicaId && !replica.draining);
    // Nobody to take the workers over, or workers that cannot outlive us: keep the files in snapshots.
    const snapshotFirst = last || !this.deps.workersOutliveReplica;
    if (snapshotFirst) this.logger.info({ last }, "sessions are scaled to zero before they are let go (their workers would not outlive this replica)");
    await handOverAll(
      this.deps.registry.all(),
      async (session) => {
        const replicated = this.replicated.get(session.id);
        if (!replicated) return;
        if (snapshotFirst) await session.suspendForShutdown("the replica serving it shut down and its worker could not outlive it; the workspace was snapshotted");
        // Before the lease goes (letGo runs the hooks again, and then finds nothing bound): the next request finds the MCP session released.
        await Promise.allSettled(this.handOverHooks.map((hook) => hook(session)));
        await replicated.flushed();
        await this.deps.store.releaseLease(session.id, replicated.lease);
        this.letGo(session, "the replica serving it is shutting down");
      },
      this.deps.config.drainTimeoutMs,
      this.logger,
    );
  }

  async close(): Promise<void> {
    clearInterval(this.tickTimer);
    await this.presence.stop();
    await this.deps.store.close();
  }

  private replicate(session: Session, lease: Lease): ReplicatedSession {
    const replicated = new ReplicatedSession(session, lease, {
      store: this.deps.store,
      replicaId: this.replicaId,
      logger: this.logger,
      launchTtlMs: this.deps.launchTtlMs,
      onFenced: (fenced) => this.letGo(fenced, "another replica took the session over"),
    });
    this.replicated.set(session.id, replicated);
    replicated.attach();
    return replicated;
  }

  /** Acquires an orphaned session and continues it here; false when another replica got it first. */
  private async adopt(sessionId: string): Promise<boolean> {
    const lease = await this.deps.store.acquireLease(sessionId, this.replicaId);
    if (!lease) return false;
    const session = await adoptSession(sessionId, {
      store: this.deps.store,
      registry: this.deps.registry,
      heartbeatIntervalMs: this.deps.heartbeatIntervalMs,
      // The worker redials for 4 heartbeat intervals after its link dropped; a little more covers the failover.
      resumeWaitMs: 5 * this.deps.heartbeatIntervalMs,
      logger: this.logger,
      adoptedWorkers: this.adoptedWorkers,
      profiles: this.deps.profiles,
    });
    if (!session) {
      await this.deps.store.releaseLease(sessionId, lease);
      return true;
    }
    this.replicate(session, lease);
    return true;
  }

  /**
   * The session goes on elsewhere: stop replicating it and let it go here
   * (clients reconnect, the worker resumes there); state bound to it (an MCP
   * session) goes with it.
   */
  private letGo(session: Session, reason: string): void {
    this.replicated.get(session.id)?.dispose();
    this.replicated.delete(session.id);
    session.detach(reason);
    for (const hook of this.handOverHooks) void hook(session).catch(() => undefined);
  }

  /** After a lapse: sessions whose lease another replica holds now (it presumed this one dead) are let go before they do harm. */
  private async verifyOwnership(): Promise<void> {
    await Promise.all(
      [...this.replicated.entries()].map(async ([sessionId, replicated]) => {
        const lease = await this.deps.store.leaseOf(sessionId).catch(() => replicated.lease);
        if (!sameLease(lease, replicated.lease)) replicated.fencedElsewhere();
      }),
    );
  }

  /** Deleted by its client (or failed for good): gone from the store too. */
  private deleted(session: Session): void {
    const replicated = this.replicated.get(session.id);
    if (!replicated) return;
    this.replicated.delete(session.id);
    replicated.dispose();
    this.deps.store.deleteSession(session.id, session.tenant, replicated.lease).catch((error: unknown) => this.logger.warn({ err: error, sessionId: session.id }, "could not delete the session's record"));
  }

  private slotId(id: string): string {
    return `${this.replicaId}:${id}`;
  }
}

function sessionMoved(sessionId: string) {
  return tetherError(ErrorCodes.SESSION_MOVED, `Session '${sessionId}' moved to another replica.`, { retryAfterS: 1, hint: "Retry: the request reaches its new owner." });
}
