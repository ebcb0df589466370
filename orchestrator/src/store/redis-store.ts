import { Redis } from "ioredis";
import type { Logger } from "pino";
import { ErrorCodes, errorMessage, tetherError } from "../errors.js";
import {
  FencedError,
  type ClusterStore,
  type JoinTokenConsumption,
  type JoinTokenRecord,
  type Lease,
  type PersistBatch,
  type PoolMember,
  type ReplicaInfo,
  type SessionJournal,
  type SessionRecord,
  type StoredEvent,
  type StoredExecution,
  type WorkerRecord,
} from "./cluster-store.js";
import { leaseValue, parseJoinToken, parseLaunch, parseLease, parsePoolMember, parseReplica, parseSessionRecord, parseStoredExecution, parseWatermark, parseWorkerRecord, poolMemberValue } from "./record-schemas.js";
import { joinTokenKeepMs } from "./memory-store.js";
import * as scripts from "./redis-scripts.js";
import { RedisAdapterBindings } from "./redis-adapter-bindings.js";

/** A command that gets no answer within this long fails: a request answers 503, never hangs on Redis. */
const COMMAND_TIMEOUT_MS = 2000;

/**
 * The shared store (TETHER_REDIS_URL): session records and tenant sets,
 * leases with fencing epochs, replica addresses, join tokens (spent
 * atomically), workers' resume digests, executions and event logs (Redis
 * streams). While Redis is unreachable every call fails at once with
 * TETHER_ERR_STORE_UNAVAILABLE (503); the client reconnects by itself.
 */
export class RedisClusterStore implements ClusterStore {
  readonly kind = "redis" as const;
  private readonly redis: Redis;
  readonly adapters: RedisAdapterBindings;

  constructor(
    url: string,
    private readonly prefix: string,
    logger: Logger,
  ) {
    this.redis = new Redis(url, {
      lazyConnect: false,
      // Fail fast while disconnected (503) instead of queueing requests behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    });
    let down = false;
    this.redis.on("error", (error) => {
      if (!down) logger.error({ err: error }, "Redis is unreachable; requests that need it answer 503 until it is back");
      down = true;
    });
    this.redis.on("ready", () => {
      if (down) logger.info("Redis is reachable again");
      down = false;
    });
    this.adapters = new RedisAdapterBindings(this.redis, (...parts) => this.key(...parts), (work) => this.call(work));
  }

  /** Resolves once connected (start-up), rejects with STORE_UNAVAILABLE after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    if (this.redis.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(unavailable(new Error(`not connected within ${timeoutMs} ms`))), timeoutMs);
      this.redis.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private key(...parts: string[]): string {
    return `${this.prefix}${parts.join(":")}`;
  }

  /**
   * Runs a script with EVAL, its text every time (Redis compiles each text
   * once and keeps it). Not EVALSHA with a NOSCRIPT fallback: the fallback
   * resends the text after commands sent meanwhile on the connection, which
   * can land an owner's flush after a later delete and bring the session back.
   */
  private script(lua: string, numKeys: number, ...args: (string | Buffer)[]): Promise<unknown> {
    return this.redis.eval(lua, numKeys, ...args);
  }

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw unavailable(error);
    }
  }

  async putSession(record: SessionRecord, lease: Lease): Promise<void> {
    const id = record.info.id;
    const ok = await this.call(() => this.script(scripts.PUT_SESSION, 3, this.key("lease", id), this.key("session", id), this.key("tenant", record.tenant), leaseValue(lease), JSON.stringify(record), id));
    if (ok !== 1) throw new FencedError(id);
  }

  async getSession(sessionId: string): Promise<SessionRecord | undefined> {
    return parseSessionRecord(await this.call(() => this.redis.get(this.key("session", sessionId))));
  }

  async deleteSession(sessionId: string, tenant: string, lease: Lease): Promise<void> {
    const keys = [
      ...[this.key("lease", sessionId), this.key("session", sessionId), this.key("tenant", tenant), this.key("executions", sessionId)],
      ...[this.key("events", sessionId), this.key("journal", sessionId), this.key("epoch", sessionId)],
    ];
    const ok = await this.call(() => this.script(scripts.DELETE_SESSION, keys.length, ...keys, leaseValue(lease), sessionId));
    if (ok !== 1) throw new FencedError(sessionId);
  }

  async listSessions(tenant: string): Promise<SessionRecord[]> {
    const ids = await this.call(() => this.redis.smembers(this.key("tenant", tenant)));
    if (ids.length === 0) return [];
    const raw = await this.call(() => this.redis.mget(ids.map((id) => this.key("session", id))));
    return raw.flatMap((text) => parseSessionRecord(text) ?? []);
  }

  async countSessions(tenant: string): Promise<number> {
    return this.call(() => this.redis.scard(this.key("tenant", tenant)));
  }

  async acquireLease(sessionId: string, replicaId: string): Promise<Lease | undefined> {
    const value = await this.call(() => this.script(scripts.ACQUIRE_LEASE, 2, this.key("lease", sessionId), this.key("epoch", sessionId), replicaId, this.key("replica", "")));
    return typeof value === "string" ? parseLease(value) : undefined;
  }

  async releaseLease(sessionId: string, lease: Lease): Promise<void> {
    await this.call(() => this.script(scripts.RELEASE_LEASE, 1, this.key("lease", sessionId), leaseValue(lease)));
  }

  async leaseOf(sessionId: string): Promise<Lease | undefined> {
    const value = await this.call(() => this.redis.get(this.key("lease", sessionId)));
    return value === null ? undefined : parseLease(value);
  }

  async announceReplica(info: ReplicaInfo, ttlMs: number): Promise<void> {
    await this.call(() => this.redis.multi().set(this.key("replica", info.replicaId), JSON.stringify(info), "PX", ttlMs).sadd(this.key("replicas"), info.replicaId).exec());
  }

  async replica(replicaId: string): Promise<ReplicaInfo | undefined> {
    return parseReplica(await this.call(() => this.redis.get(this.key("replica", replicaId))));
  }

  async replicas(): Promise<ReplicaInfo[]> {
    const ids = await this.call(() => this.redis.smembers(this.key("replicas")));
    if (ids.length === 0) return [];
    const raw = await this.call(() => this.redis.mget(ids.map((id) => this.key("replica", id))));
    const gone = ids.filter((_, index) => raw[index] === null);
    // Replicas that stopped announcing themselves leave the set as they are noticed.
    if (gone.length > 0) await this.call(() => this.redis.srem(this.key("replicas"), ...gone));
    return raw.flatMap((text) => parseReplica(text) ?? []);
  }

  async forgetReplica(replicaId: string): Promise<void> {
    await this.call(() => this.redis.multi().del(this.key("replica", replicaId)).srem(this.key("replicas"), replicaId).exec());
  }

  async putLaunch(launchId: string, binding: { sessionId: string | null; replicaId: string }, ttlMs: number): Promise<void> {
    await this.call(() => this.redis.set(this.key("launch", launchId), JSON.stringify(binding), "PX", ttlMs));
  }

  async getLaunch(launchId: string): Promise<{ sessionId: string | null; replicaId: string } | undefined> {
    return parseLaunch(await this.call(() => this.redis.get(this.key("launch", launchId))));
  }

  async deleteLaunch(launchId: string): Promise<void> {
    await this.call(() => this.redis.del(this.key("launch", launchId)));
  }

  async mintJoinToken(digest: string, record: JoinTokenRecord, ttlMs: number): Promise<void> {
    const keepMs = joinTokenKeepMs(ttlMs);
    await this.call(() =>
      this.redis.multi().set(this.key("join", digest), JSON.stringify({ ...record, spent: false }), "PX", keepMs).set(this.key("joinlaunch", record.launchId), digest, "PX", keepMs).exec(),
    );
  }

  async consumeJoinToken(digest: string, now: number): Promise<JoinTokenConsumption> {
    const result = await this.call(() => this.script(scripts.CONSUME_JOIN_TOKEN, 1, this.key("join", digest), String(now)));
    if (result === "invalid" || result === "reused" || result === "expired") return { ok: false, reason: result };
    const record = typeof result === "string" ? parseJoinToken(result) : undefined;
    return record ? { ok: true, record } : { ok: false, reason: "invalid" };
  }

  async revokeJoinToken(launchId: string): Promise<void> {
    const digest = await this.call(() => this.redis.get(this.key("joinlaunch", launchId)));
    if (digest !== null) await this.call(() => this.script(scripts.REVOKE_JOIN_TOKEN, 1, this.key("join", digest)));
  }

  async putWorker(record: WorkerRecord): Promise<void> {
    await this.call(() => this.redis.set(this.key("worker", record.workerId), JSON.stringify(record)));
  }

  async getWorker(workerId: string): Promise<WorkerRecord | undefined> {
    return parseWorkerRecord(await this.call(() => this.redis.get(this.key("worker", workerId))));
  }

  async deleteWorker(workerId: string): Promise<void> {
    await this.call(() => this.redis.del(this.key("worker", workerId)));
  }

  async addPoolMember(member: PoolMember): Promise<void> {
    await this.call(() => this.redis.zadd(this.key("pool"), Date.now(), poolMemberValue(member)));
  }

  async removePoolMember(member: PoolMember): Promise<boolean> {
    return (await this.call(() => this.redis.zrem(this.key("pool"), poolMemberValue(member)))) === 1;
  }

  async relistPoolMembers(members: readonly PoolMember[]): Promise<void> {
    if (members.length === 0) return;
    const args = [String(Date.now()), this.key("poolclaim", "")];
    for (const member of members) args.push(poolMemberValue(member), member.launchId);
    await this.call(() => this.script(scripts.RELIST_POOL_MEMBERS, 1, this.key("pool"), ...args));
  }

  async releasePoolClaim(member: PoolMember, claimToken: string): Promise<void> {
    await this.call(() => this.script(scripts.RELEASE_POOL_CLAIM, 2, this.key("pool"), this.key("poolclaim", member.launchId), String(Date.now()), poolMemberValue(member), claimToken));
  }

  async claimPoolMember(exceptReplicaId: string, claimToken: string, claimTtlMs: number): Promise<PoolMember | undefined> {
    const args = [exceptReplicaId, this.key("replica", ""), this.key("poolclaim", ""), claimToken, String(claimTtlMs)];
    const taken = await this.call(() => this.script(scripts.CLAIM_POOL_MEMBER, 1, this.key("pool"), ...args));
    return typeof taken === "string" ? parsePoolMember(taken) : undefined;
  }

  async redeemPoolClaim(launchId: string, claimToken: string): Promise<boolean> {
    return (await this.call(() => this.script(scripts.REDEEM_POOL_CLAIM, 1, this.key("poolclaim", launchId), claimToken))) === 1;
  }

  async poolMembers(): Promise<PoolMember[]> {
    const members = (await this.call(() => this.redis.zrange(this.key("pool"), 0, -1))).flatMap((value) => parsePoolMember(value) ?? []);
    const live = new Set((await this.replicas()).map((replica) => replica.replicaId));
    return members.filter((member) => live.has(member.replicaId));
  }

  async putExecution(sessionId: string, execution: StoredExecution, lease: Lease): Promise<void> {
    const ok = await this.call(() => this.script(scripts.PUT_EXECUTION, 2, this.key("lease", sessionId), this.key("executions", sessionId), leaseValue(lease), execution.requestId, JSON.stringify(execution)));
    if (ok !== 1) throw new FencedError(sessionId);
  }

  async listExecutions(sessionId: string): Promise<StoredExecution[]> {
    const all = await this.call(() => this.redis.hvals(this.key("executions", sessionId)));
    return all.flatMap((text) => parseStoredExecution(text) ?? []);
  }

  async persist(sessionId: string, batch: PersistBatch, lease: Lease): Promise<void> {
    const executions = batch.executions ?? [];
    const args: (string | Buffer)[] = [
      leaseValue(lease),
      sessionId,
      batch.record ? JSON.stringify(batch.record) : "",
      String(batch.keepFromSeq),
      batch.worker ? `${batch.worker.workerId}:${batch.worker.seq}` : "",
      String(executions.length),
    ];
    for (const execution of executions) args.push(execution.requestId, JSON.stringify(execution));
    for (const event of batch.events ?? []) {
      args.push(String(event.seq), event.requestId ?? "", String(event.at), event.done ? "1" : "0", Buffer.from(event.frame.buffer, event.frame.byteOffset, event.frame.byteLength));
    }
    const tenant = batch.record?.tenant ?? "";
    const keys = [this.key("lease", sessionId), this.key("session", sessionId), this.key("tenant", tenant), this.key("executions", sessionId), this.key("events", sessionId), this.key("journal", sessionId)];
    const ok = await this.call(() => this.script(scripts.PERSIST, keys.length, ...keys, ...args));
    if (ok !== 1) throw new FencedError(sessionId);
  }

  async readJournal(sessionId: string): Promise<SessionJournal> {
    const [entries, meta] = await this.call(() => Promise.all([this.redis.xrangeBuffer(this.key("events", sessionId), "-", "+"), this.redis.hgetall(this.key("journal", sessionId))]));
    const watermark = meta.worker;
    const events: StoredEvent[] = [];
    for (const [id, fields] of entries) {
      const map = new Map<string, Buffer>();
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = fields[i];
        const value = fields[i + 1];
        if (name && value) map.set(name.toString(), value);
      }
      const frame = map.get("f");
      if (!frame) continue;
      const requestId = map.get("r")?.toString() ?? "";
      events.push({
        seq: Number(id.toString().split("-")[0]),
        requestId: requestId === "" ? null : requestId,
        at: Number(map.get("t")?.toString() ?? 0),
        done: map.get("d")?.toString() === "1",
        frame: new Uint8Array(frame),
      });
    }
    const worker = watermark ? parseWatermark(watermark) : undefined;
    const lastSeq = Math.max(Number(meta.seq ?? 0) || 0, events.at(-1)?.seq ?? 0);
    return { events, lastSeq, ...(worker ? { worker } : {}) };
  }

  async tryAcquireStartSlot(slotId: string, max: number, ttlMs: number): Promise<boolean> {
    return (await this.call(() => this.script(scripts.ACQUIRE_START_SLOT, 1, this.key("starts"), slotId, String(max), String(Date.now()), String(ttlMs)))) === 1;
  }

  async releaseStartSlot(slotId: string): Promise<void> {
    await this.call(() => this.redis.zrem(this.key("starts"), slotId));
  }

  async startSlotsInUse(): Promise<number> {
    return this.call(async () => {
      await this.redis.zremrangebyscore(this.key("starts"), "-inf", String(Date.now()));
      return this.redis.zcard(this.key("starts"));
    });
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === "PONG";
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

function unavailable(error: unknown) {
  if (error instanceof FencedError) return error;
  return tetherError(ErrorCodes.STORE_UNAVAILABLE, `The session store (Redis) is unreachable: ${errorMessage(error)}.`, {
    hint: "Retry in a few seconds; if it lasts, check TETHER_REDIS_URL and that Redis is running.",
    retryAfterS: 2,
    cause: error,
  });
}
