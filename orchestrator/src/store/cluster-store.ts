import type { SessionInfo, StdinMode } from "@tether/shared";
import type { AdapterBindings } from "./adapter-bindings.js";

/**
 * What must outlive one orchestrator process, behind one interface with two
 * implementations: memory (the embedded default: one process, nothing to
 * run) and Redis (TETHER_REDIS_URL: several replicas share it). Writes an
 * owner makes about its sessions carry its lease, and are refused once
 * another replica holds the session (fencing): two replicas never both act
 * as owner.
 */

/** A session as every replica sees it: enough to list it, count it, and adopt it after its owner died. */
export interface SessionRecord {
  info: SessionInfo;
  tenant: string;
  /** The worker serving it, while one does: a replica that adopts the session accepts that worker's resume. */
  worker?: { workerId: string; launchId: string };
}

/**
 * Which replica owns a session, and the fencing token of that ownership
 * (the epoch grows with every new owner). Ownership has no expiry of its own:
 * it lasts while the owning replica keeps announcing itself, so ten thousand
 * sessions cost no renewals, and a dead replica loses all of them at once.
 */
export interface Lease {
  replicaId: string;
  epoch: number;
}

/** The same lease: held by the same replica under the same epoch. */
export function sameLease(a: Lease | undefined, b: Lease): boolean {
  return a !== undefined && a.replicaId === b.replicaId && a.epoch === b.epoch;
}

/** A replica as the others see it while it announces itself. */
export interface ReplicaInfo {
  replicaId: string;
  /** Base URL other replicas forward to (http://host:port). */
  address: string;
  /** Shutting down: hands its sessions over and takes on none. */
  draining: boolean;
}

/** What the next owner needs to carry on a session: its numbered events and how far the worker's frames were persisted. */
export interface SessionJournal {
  events: StoredEvent[];
  /** The last seq ever numbered (numbering continues after it even when every event was trimmed). */
  lastSeq: number;
  /** The serving worker's last link seq whose effects are in `events` (the new owner resumes the worker after it). */
  worker?: WorkerWatermark;
}

/** An execution that must survive its owner: the code of a queued or running one, so the next owner can run or end it. */
export interface StoredExecution {
  requestId: string;
  /** Ended: its done is in the events (or was trimmed with them); the code is no longer kept. */
  state: "queued" | "running" | "ended";
  createdAt: string;
  code?: string;
  timeoutMs?: number;
  stdin?: StdinMode;
}

/** How far one worker's frames are persisted: its link seq (each worker's link counts from 1). */
export interface WorkerWatermark {
  workerId: string;
  seq: number;
}

/** One numbered client-visible message, as sent. */
export interface StoredEvent {
  seq: number;
  requestId: string | null;
  /** When it was logged (epoch ms): retention counts from there. */
  at: number;
  frame: Uint8Array;
  /** The execution's last message. */
  done?: boolean;
}

/** What an owner's flush writes at once (see ClusterStore.persist). */
export interface PersistBatch {
  record?: SessionRecord;
  executions?: readonly StoredExecution[];
  events?: readonly StoredEvent[];
  worker?: WorkerWatermark;
  keepFromSeq: number;
}

export interface JoinTokenRecord {
  launchId: string;
  sessionId: string | null;
  expiresAt: number;
}

export type JoinTokenConsumption = { ok: true; record: JoinTokenRecord } | { ok: false; reason: "invalid" | "reused" | "expired" };

/** A worker that may resume on another replica: where it belongs, and its resume credential's digest. */
export interface WorkerRecord {
  workerId: string;
  /** null for a warm-pool worker not claimed yet. */
  sessionId: string | null;
  launchId: string;
  /** base64 sha256 of the current resume token. */
  resumeDigest: string;
  kernel?: SessionInfo["kernel"];
}

/**
 * An idle, ready warm-pool worker listed for the whole cluster: its
 * connection is held by `replicaId`, so a session using it is created there.
 */
export interface PoolMember {
  replicaId: string;
  launchId: string;
}

/** Thrown when a write carries a lease another replica has replaced: the session belongs to someone else now. */
export class FencedError extends Error {
  constructor(readonly sessionId: string) {
    super(`Session '${sessionId}' is owned by another replica now.`);
    this.name = "FencedError";
  }
}

export interface ClusterStore {
  readonly kind: "memory" | "redis";
  /** The agent adapters' identifiers and MCP sessions (adapter-bindings.ts). */
  readonly adapters: AdapterBindings;

  // ---- sessions ----------------------------------------------------------
  putSession(record: SessionRecord, lease: Lease): Promise<void>;
  getSession(sessionId: string): Promise<SessionRecord | undefined>;
  deleteSession(sessionId: string, tenant: string, lease: Lease): Promise<void>;
  listSessions(tenant: string): Promise<SessionRecord[]>;
  /** Sessions the tenant holds, across replicas (the quota). */
  countSessions(tenant: string): Promise<number>;

  // ---- ownership ---------------------------------------------------------
  /**
   * Takes the session when nobody owns it, its owner stopped announcing
   * itself, or `replicaId` already does; undefined while another live
   * replica owns it. A new owner gets a higher epoch.
   */
  acquireLease(sessionId: string, replicaId: string): Promise<Lease | undefined>;
  /** Gives the session up (a graceful hand-over); a no-op once someone else holds it. */
  releaseLease(sessionId: string, lease: Lease): Promise<void>;
  leaseOf(sessionId: string): Promise<Lease | undefined>;

  // ---- replicas ----------------------------------------------------------
  /** Says where a replica answers, for `ttlMs` (it repeats well within). */
  announceReplica(info: ReplicaInfo, ttlMs: number): Promise<void>;
  /** A replica still announcing itself. */
  replica(replicaId: string): Promise<ReplicaInfo | undefined>;
  /** Every replica still announcing itself. */
  replicas(): Promise<ReplicaInfo[]>;
  forgetReplica(replicaId: string): Promise<void>;

  // ---- launches and workers ----------------------------------------------
  /** Which session (null: the warm pool) and replica a launch belongs to: routes the worker's dial-back. */
  putLaunch(launchId: string, binding: { sessionId: string | null; replicaId: string }, ttlMs: number): Promise<void>;
  getLaunch(launchId: string): Promise<{ sessionId: string | null; replicaId: string } | undefined>;
  deleteLaunch(launchId: string): Promise<void>;
  mintJoinToken(digest: string, record: JoinTokenRecord, ttlMs: number): Promise<void>;
  /** Spends a token atomically: across every replica, at most one consumption succeeds. */
  consumeJoinToken(digest: string, now: number): Promise<JoinTokenConsumption>;
  revokeJoinToken(launchId: string): Promise<void>;
  putWorker(record: WorkerRecord): Promise<void>;
  getWorker(workerId: string): Promise<WorkerRecord | undefined>;
  deleteWorker(workerId: string): Promise<void>;

  // ---- warm pool -----------------------------------------------------------
  /** Lists a ready pool worker as claimable by any replica, until it is claimed or withdrawn. */
  addPoolMember(member: PoolMember): Promise<void>;
  /** Withdraws a member (claimed by its own replica, or lost); false when it was no longer listed (another replica claimed it). */
  removePoolMember(member: PoolMember): Promise<boolean>;
  /**
   * Takes one member, oldest first, held by a live replica that is not
   * draining and is not `exceptReplicaId`, in one atomic step: two claims
   * never get the same member. Members of replicas that stopped announcing
   * themselves are dropped on the way (so they are claimable at most until
   * the replica's TTL lapses). The claim is recorded under `claimToken` for
   * `claimTtlMs`, for the holding replica to check (`redeemPoolClaim`).
   */
  claimPoolMember(exceptReplicaId: string, claimToken: string, claimTtlMs: number): Promise<PoolMember | undefined>;
  /** True once (and only once) for the token a claim recorded for this launch: proof that a request names a worker a replica really claimed. */
  redeemPoolClaim(launchId: string, claimToken: string): Promise<boolean>;
  /** Every claimable member (those of live replicas), oldest first. */
  poolMembers(): Promise<PoolMember[]>;
  /**
   * Lists again, each as it was if still listed, the holder's idle workers
   * that have no claim in flight: a claim whose forward never reached the
   * holder (refused, unreachable, rejected before it redeemed) or a failed
   * listing must not hide a worker from the cluster for good.
   */
  relistPoolMembers(members: readonly PoolMember[]): Promise<void>;
  /** Gives a claim back unused (the holder refused the forwarded create before redeeming it): the member is listed again. No-op once redeemed or lapsed. */
  releasePoolClaim(member: PoolMember, claimToken: string): Promise<void>;

  // ---- executions and events ---------------------------------------------
  putExecution(sessionId: string, execution: StoredExecution, lease: Lease): Promise<void>;
  listExecutions(sessionId: string): Promise<StoredExecution[]>;
  /**
   * One owner's flush, applied as one step (one round trip on Redis): the
   * record if it changed, executions as they are now, events appended in
   * order (one already held is skipped: a retried batch), how far the serving
   * worker's frames are in, and `keepFromSeq` trims what the owner no longer
   * keeps either.
   */
  persist(sessionId: string, batch: PersistBatch, lease: Lease): Promise<void>;
  /** Everything kept of the session's events (a new owner loads it). */
  readJournal(sessionId: string): Promise<SessionJournal>;

  // ---- cluster-wide limits -----------------------------------------------
  /** A start slot among `max` cluster-wide; a slot not released within `ttlMs` frees itself (its replica died). */
  tryAcquireStartSlot(slotId: string, max: number, ttlMs: number): Promise<boolean>;
  releaseStartSlot(slotId: string): Promise<void>;
  /** Start slots in use cluster-wide. */
  startSlotsInUse(): Promise<number>;

  /** Reachable right now (readiness). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
