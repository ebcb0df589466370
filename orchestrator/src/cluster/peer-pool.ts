import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { Logger } from "pino";
import type { PoolStatus } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";
import type { ClusterStore, PoolMember } from "../store/cluster-store.js";
import type { WarmPool } from "../workers/warm-pool.js";
import { FORWARDED_HEADER, postJson, unreachableReason, type JsonAnswer } from "./forward.js";

/** Another replica's answer to a create, passed on as is. */
export type PeerAnswer = Extract<JsonAnswer, { kind: "answered" }>;

/**
 * Names the pool worker another replica claimed for a forwarded create:
 * `<launchId>.<token>`. It counts only when the token is the one the claim
 * recorded in the store (single use, short-lived), so a client sending it
 * gains nothing: it cannot take a worker someone else claimed.
 */
export const POOL_CLAIM_HEADER = "x-tether-pool-claim";
/** A claim not redeemed this soon lapses (the forward failed, or the holder died). */
const CLAIM_TTL_MS = 30_000;
/** Claims tried per create: a claimed member whose replica vanished in between is skipped. */
const CLAIM_ATTEMPTS = 2;
/** Request headers not passed to the holder: about this hop, or set anew. */
const NOT_PASSED = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding", "upgrade", FORWARDED_HEADER, POOL_CLAIM_HEADER]);

export interface PeerPoolDeps {
  store: ClusterStore;
  replicaId: string;
  /** This replica's warm pool (absent with TETHER_POOL_SIZE=0: it then only uses the others'). */
  pool: WarmPool | undefined;
  logger: Logger;
}

/**
 * The warm pool as one for the whole cluster. Pool workers stay connected
 * to the replica that launched them (a reverse-connect link cannot move), so
 * each replica lists its idle, ready ones in the store; a create on a
 * replica without one claims another replica's member atomically and is
 * forwarded there, where the session is created on that very worker. The
 * local pool comes first (no hop). docs/internals.md, "Cluster", draws it.
 */
export class PeerPool {
  private readonly logger: Logger;

  constructor(private readonly deps: PeerPoolDeps) {
    this.logger = deps.logger.child({ component: "peer-pool" });
  }

  /** Lists this replica's idle workers in the store from now on. */
  start(): void {
    const { store, replicaId } = this.deps;
    const warn = (launchId: string, what: string) => (error: unknown) => this.logger.warn({ err: error, launchId }, `could not ${what} the pool worker in the store`);
    this.deps.pool?.observe({
      listed: (launchId) => void store.addPoolMember({ replicaId, launchId }).catch(warn(launchId, "list")),
      withdrawn: (launchId) => void store.removePoolMember({ replicaId, launchId }).catch(warn(launchId, "withdraw")),
    });
  }

  /** Lists this replica's idle workers again (see ClusterStore.relistPoolMembers); called now and then. */
  async relist(): Promise<void> {
    const { store, replicaId, pool } = this.deps;
    const members = (pool?.readyLaunchIds() ?? []).map((launchId) => ({ replicaId, launchId }));
    await store.relistPoolMembers(members).catch((error: unknown) => this.logger.debug({ err: error }, "could not list the pool workers again"));
  }

  /**
   * The local worker another replica claimed for this (forwarded) create,
   * when the request carries a claim the store confirms; undefined otherwise.
   */
  async redeem(headers: IncomingHttpHeaders): Promise<string | undefined> {
    const value = headers[POOL_CLAIM_HEADER];
    if (typeof value !== "string" || headers[FORWARDED_HEADER] === undefined) return undefined;
    const match = /^(lch_[A-Za-z0-9]{1,64})\.([A-Za-z0-9_-]{16,64})$/.exec(value);
    if (!match?.[1] || !match[2]) return undefined;
    return (await this.deps.store.redeemPoolClaim(match[1], match[2])) ? match[1] : undefined;
  }

  /**
   * Creates the session on a replica holding an idle pool worker, when this
   * one has none ready: claims a member, forwards the create there naming
   * it, and returns that replica's answer. Undefined when no replica has one
   * or it could not be reached (the caller creates here, cold): a create
   * never fails for want of a peer.
   */
  async createElsewhere(headers: IncomingHttpHeaders, body: unknown): Promise<PeerAnswer | undefined> {
    // A forwarded create is served where it landed: it never hops twice.
    if (headers[FORWARDED_HEADER] !== undefined || (this.deps.pool?.readyCount ?? 0) > 0) return undefined;
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const token = randomBytes(18).toString("base64url");
      const member = await this.deps.store.claimPoolMember(this.deps.replicaId, token, CLAIM_TTL_MS).catch(() => undefined);
      if (!member) return undefined;
      const holder = await this.deps.store.replica(member.replicaId).catch(() => undefined);
      if (!holder) continue;
      const answer = await postJson(new URL("/v1/sessions", holder.address), passedHeaders(headers, member, token, this.deps.replicaId), JSON.stringify(body ?? {})).catch((error: unknown) => {
        throw tetherError(ErrorCodes.SESSION_OWNER_UNAVAILABLE, `The replica creating the session (${member.replicaId}) dropped the connection or did not answer (${error instanceof Error ? unreachableReason(error) : "unknown"}).`, {
          retryAfterS: 1,
          hint: "Retry the create; list your sessions first if a duplicate would matter (the other replica may have created it).",
          cause: error,
        });
      });
      // Refused (431, 429, 4xx) or never reached: the holder did not use the worker, which goes back on the list.
      const unused = answer.kind !== "answered" || answer.status < 200 || answer.status >= 300;
      if (unused) await this.deps.store.releasePoolClaim(member, token).catch((error: unknown) => this.logger.warn({ err: error, launchId: member.launchId }, "could not give the pool claim back; the worker is listed again within seconds"));
      if (answer.kind === "answered") {
        this.logger.info({ holder: member.replicaId, launchId: member.launchId, status: answer.status }, "created the session on the replica holding an idle pool worker");
        return answer;
      }
      this.logger.warn({ holder: member.replicaId, launchId: member.launchId, err: answer.cause }, "the replica holding the claimed pool worker could not be reached; creating here");
      return undefined;
    }
    return undefined;
  }

  /** Idle members per live replica (every live replica listed, with 0 when it has none), for GET /v1/pool. */
  async status(): Promise<NonNullable<PoolStatus["cluster"]>> {
    const [replicas, members] = await Promise.all([this.deps.store.replicas(), this.deps.store.poolMembers()]);
    const idle = new Map<string, number>();
    for (const member of members) idle.set(member.replicaId, (idle.get(member.replicaId) ?? 0) + 1);
    const listed = replicas
      .map((replica) => ({ replicaId: replica.replicaId, idle: idle.get(replica.replicaId) ?? 0, draining: replica.draining }))
      .sort((a, b) => a.replicaId.localeCompare(b.replicaId));
    return { replicaId: this.deps.replicaId, idle: listed.reduce((sum, replica) => sum + (replica.draining ? 0 : replica.idle), 0), replicas: listed };
  }
}

function passedHeaders(headers: IncomingHttpHeaders, member: PoolMember, token: string, replicaId: string): Record<string, string | string[]> {
  const passed: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !NOT_PASSED.has(name)) passed[name] = value;
  passed["content-type"] = "application/json";
  passed[FORWARDED_HEADER] = replicaId;
  passed[POOL_CLAIM_HEADER] = `${member.launchId}.${token}`;
  return passed;
}
