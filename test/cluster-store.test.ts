import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, FencedError, MemoryClusterStore, RedisClusterStore, type ClusterStore, type SessionRecord } from "@tether/orchestrator";
import { startTestRedis, type TestRedis } from "./helpers/redis-server.js";

/**
 * One contract, two stores: the memory store (one process) and the Redis
 * store against a real redis-server. What differs (events are only copied to
 * Redis) is asserted per kind.
 */
let redis: TestRedis;
const opened: RedisClusterStore[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await Promise.all(opened.map((store) => store.close()));
  await redis.close();
});

async function redisStore(): Promise<RedisClusterStore> {
  const store = new RedisClusterStore(redis.url, `t${Math.random().toString(36).slice(2)}:`, pino({ level: "silent" }));
  opened.push(store);
  await store.ready(5000);
  return store;
}

function record(id: string, tenant = "alice"): SessionRecord {
  return {
    tenant,
    info: {
      id,
      status: "ready",
      phase: "ready",
      createdAt: new Date(0).toISOString(),
      lastActivityAt: new Date(0).toISOString(),
      idleTimeoutS: 60,
      metadata: {},
      profile: "default",
    },
  };
}

const kinds: [string, () => Promise<ClusterStore>][] = [
  ["memory", async () => new MemoryClusterStore()],
  ["redis", redisStore],
];

describe.each(kinds)("%s store", (kind, open) => {
  it("gives a session to one live replica; a dead owner's sessions go to the next with a higher epoch, which fences the old one", async () => {
    const store = await open();
    await store.announceReplica({ replicaId: "r1", address: "http://127.0.0.1:1", draining: false }, 60_000);
    await store.announceReplica({ replicaId: "r2", address: "http://127.0.0.1:2", draining: false }, 60_000);
    const first = await store.acquireLease("s1", "r1");
    expect(first).toEqual({ replicaId: "r1", epoch: 1 });
    expect(await store.acquireLease("s1", "r1")).toEqual(first);
    expect(await store.acquireLease("s1", "r2")).toBeUndefined();
    await store.putSession(record("s1"), first!);

    await store.forgetReplica("r1");
    const second = await store.acquireLease("s1", "r2");
    expect(second).toEqual({ replicaId: "r2", epoch: 2 });
    await expect(store.putSession(record("s1"), first!)).rejects.toBeInstanceOf(FencedError);
    await expect(store.persist("s1", { keepFromSeq: 1 }, first!)).rejects.toBeInstanceOf(FencedError);
    await store.putSession(record("s1"), second!);
    expect(await store.leaseOf("s1")).toEqual(second);

    await store.releaseLease("s1", first!);
    expect(await store.leaseOf("s1")).toEqual(second);
    await store.releaseLease("s1", second!);
    expect(await store.leaseOf("s1")).toBeUndefined();
  });

  it("persists a flush as one step: record, executions and the tenant's set together; a fenced flush writes none of it", async () => {
    const store = await open();
    const first = (await store.acquireLease("p1", "r1"))!;
    const execution = { requestId: "q", state: "running" as const, createdAt: new Date().toISOString(), code: "x = 1" };
    await store.persist("p1", { record: record("p1"), executions: [execution, { requestId: "z", state: "ended", createdAt: execution.createdAt }], keepFromSeq: 1 }, first);
    expect((await store.getSession("p1"))?.tenant).toBe("alice");
    expect(await store.countSessions("alice")).toBe(1);
    expect((await store.listExecutions("p1")).sort((a, b) => a.requestId.localeCompare(b.requestId))).toEqual([execution, { requestId: "z", state: "ended", createdAt: execution.createdAt }]);

    await store.forgetReplica("r1");
    const second = (await store.acquireLease("p1", "r2"))!;
    const stale = { ...record("p1"), tenant: "mallory" };
    await expect(store.persist("p1", { record: stale, executions: [{ ...execution, state: "ended" }], keepFromSeq: 1 }, first)).rejects.toBeInstanceOf(FencedError);
    expect((await store.getSession("p1"))?.tenant).toBe("alice");
    expect(await store.countSessions("mallory")).toBe(0);
    expect((await store.listExecutions("p1")).find((e) => e.requestId === "q")?.state).toBe("running");
    await store.persist("p1", { executions: [{ requestId: "q", state: "ended", createdAt: execution.createdAt }], keepFromSeq: 1 }, second);
    expect((await store.listExecutions("p1")).find((e) => e.requestId === "q")?.state).toBe("ended");
  });

  it("refuses a write once no lease is held: a late flush cannot bring a deleted session back", async () => {
    const store = await open();
    const lease = (await store.acquireLease("g1", "r1"))!;
    await store.putSession(record("g1"), lease);
    await store.deleteSession("g1", "alice", lease);
    const late = { requestId: "q", state: "queued" as const, createdAt: new Date().toISOString(), code: "print('late')" };
    await expect(store.persist("g1", { record: record("g1"), executions: [late], keepFromSeq: 1 }, lease)).rejects.toBeInstanceOf(FencedError);
    await expect(store.putSession(record("g1"), lease)).rejects.toBeInstanceOf(FencedError);
    await expect(store.putExecution("g1", late, lease)).rejects.toBeInstanceOf(FencedError);
    expect(await store.getSession("g1")).toBeUndefined();
    expect(await store.countSessions("alice")).toBe(0);
    expect(await store.listExecutions("g1")).toEqual([]);
    expect(await store.leaseOf("g1")).toBeUndefined();
    // Never leased at all: refused the same way.
    await expect(store.putSession(record("g2"), { replicaId: "r1", epoch: 1 })).rejects.toBeInstanceOf(FencedError);
  });

  it("a replica that stops announcing itself is gone after its TTL", async () => {
    const store = await open();
    await store.announceReplica({ replicaId: "short", address: "http://127.0.0.1:3", draining: true }, 150);
    expect(await store.replica("short")).toEqual({ replicaId: "short", address: "http://127.0.0.1:3", draining: true });
    expect((await store.replicas()).map((r) => r.replicaId)).toContain("short");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store.replica("short")).toBeUndefined();
    expect((await store.replicas()).map((r) => r.replicaId)).not.toContain("short");
  });

  it("lists and counts a tenant's sessions, and forgets a deleted one with everything it had", async () => {
    const store = await open();
    const lease = (await store.acquireLease("a1", "r1"))!;
    await store.putSession(record("a1"), lease);
    await store.putSession(record("b1", "bob"), (await store.acquireLease("b1", "r1"))!);
    await store.putExecution("a1", { requestId: "x", state: "queued", createdAt: new Date().toISOString(), code: "1" }, lease);
    expect(await store.countSessions("alice")).toBe(1);
    expect((await store.listSessions("alice")).map((r) => r.info.id)).toEqual(["a1"]);
    expect((await store.getSession("a1"))?.tenant).toBe("alice");
    expect(await store.listExecutions("a1")).toHaveLength(1);

    await store.deleteSession("a1", "alice", lease);
    expect(await store.countSessions("alice")).toBe(0);
    expect(await store.getSession("a1")).toBeUndefined();
    expect(await store.listExecutions("a1")).toEqual([]);
    expect(await store.leaseOf("a1")).toBeUndefined();
  });

  it("spends a join token once even when twenty consumers race for it", async () => {
    const store = await open();
    await store.mintJoinToken("digest-1", { launchId: "l1", sessionId: "s1", expiresAt: Date.now() + 60_000 }, 60_000);
    const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeJoinToken("digest-1", Date.now())));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === "reused")).toHaveLength(19);
    expect(await store.consumeJoinToken("nope", Date.now())).toEqual({ ok: false, reason: "invalid" });

    await store.mintJoinToken("digest-2", { launchId: "l2", sessionId: null, expiresAt: Date.now() - 1 }, 60_000);
    expect(await store.consumeJoinToken("digest-2", Date.now())).toEqual({ ok: false, reason: "expired" });
    await store.mintJoinToken("digest-3", { launchId: "l3", sessionId: null, expiresAt: Date.now() + 60_000 }, 60_000);
    await store.revokeJoinToken("l3");
    expect(await store.consumeJoinToken("digest-3", Date.now())).toEqual({ ok: false, reason: "reused" });
  });

  it("hands out at most `max` start slots cluster-wide; a slot nobody releases frees itself", async () => {
    const store = await open();
    expect(await store.tryAcquireStartSlot("a", 2, 60_000)).toBe(true);
    expect(await store.tryAcquireStartSlot("b", 2, 200)).toBe(true);
    expect(await store.tryAcquireStartSlot("c", 2, 60_000)).toBe(false);
    expect(await store.startSlotsInUse()).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store.tryAcquireStartSlot("c", 2, 60_000)).toBe(true);
    await store.releaseStartSlot("a");
    expect(await store.startSlotsInUse()).toBe(1);
  });

  it("hands each idle pool worker to one claimer when two replicas claim at once, never the claimer's own, oldest first", async () => {
    const store = await open();
    for (const id of ["r1", "r2", "r3"]) await store.announceReplica({ replicaId: id, address: `http://127.0.0.1:${id.slice(1)}`, draining: false }, 60_000);
    const listed = ["l1", "l2", "l3", "l4"].map((launchId, index) => ({ replicaId: index < 3 ? "r1" : "r2", launchId }));
    for (const member of listed) await store.addPoolMember(member);
    expect(await store.poolMembers()).toEqual(listed);

    // r1 itself gets none of its own: only r2's.
    expect(await store.claimPoolMember("r1", "token-own", 60_000)).toEqual({ replicaId: "r2", launchId: "l4" });
    expect(await store.claimPoolMember("r1", "token-own2", 60_000)).toBeUndefined();
    // Twelve claims at once by r2 and r3 for r1's three workers: each goes to exactly one.
    const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => store.claimPoolMember(i % 2 ? "r2" : "r3", `token-${i}`, 60_000)));
    const taken = claims.flatMap((member) => member ?? []);
    expect(taken.map((member) => member.launchId).sort()).toEqual(["l1", "l2", "l3"]);
    expect(await store.poolMembers()).toEqual([]);
    // A member withdrawn by its replica (claimed locally) is not claimable; withdrawing a claimed one says so.
    await store.addPoolMember({ replicaId: "r1", launchId: "l5" });
    expect(await store.removePoolMember({ replicaId: "r1", launchId: "l5" })).toBe(true);
    expect(await store.removePoolMember({ replicaId: "r1", launchId: "l1" })).toBe(false);
    expect(await store.claimPoolMember("r2", "token-x", 60_000)).toBeUndefined();
  });

  it("redeems a pool claim once, with its token only", async () => {
    const store = await open();
    await store.announceReplica({ replicaId: "r1", address: "http://127.0.0.1:1", draining: false }, 60_000);
    await store.addPoolMember({ replicaId: "r1", launchId: "l1" });
    expect(await store.claimPoolMember("r2", "the-token", 60_000)).toEqual({ replicaId: "r1", launchId: "l1" });
    expect(await store.redeemPoolClaim("l1", "a-guess")).toBe(false);
    expect(await store.redeemPoolClaim("l9", "the-token")).toBe(false);
    expect(await store.redeemPoolClaim("l1", "the-token")).toBe(true);
    expect(await store.redeemPoolClaim("l1", "the-token")).toBe(false);
    // A claim nobody redeems lapses.
    await store.addPoolMember({ replicaId: "r1", launchId: "l2" });
    expect(await store.claimPoolMember("r2", "short", 100)).toEqual({ replicaId: "r1", launchId: "l2" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await store.redeemPoolClaim("l2", "short")).toBe(false);
  });

  it("lists a claimed pool worker again when its claim is given back unused or lapses, never while a claim is in flight or after it was redeemed", async () => {
    const store = await open();
    await store.announceReplica({ replicaId: "r1", address: "http://127.0.0.1:1", draining: false }, 60_000);
    const [l1, l2, l3] = ["l1", "l2", "l3"].map((launchId) => ({ replicaId: "r1", launchId }));
    for (const member of [l1!, l2!, l3!]) await store.addPoolMember(member);
    // The holder refused the forwarded create: the claimer gives the claim back, the worker is claimable again.
    expect(await store.claimPoolMember("r2", "t1", 60_000)).toEqual(l1);
    await store.releasePoolClaim(l1!, "wrong-token");
    expect(await store.poolMembers()).toEqual([l2, l3]);
    await store.releasePoolClaim(l1!, "t1");
    expect((await store.poolMembers()).map((m) => m.launchId).sort()).toEqual(["l1", "l2", "l3"]);
    expect(await store.redeemPoolClaim("l1", "t1")).toBe(false);
    // Relisting skips a claim in flight and a listed member keeps its place; a redeemed one is not released back.
    const claimed = await store.claimPoolMember("r2", "t2", 60_000);
    await store.relistPoolMembers([l1!, l2!, l3!].filter((m) => m.launchId !== claimed?.launchId).concat(claimed ? [claimed] : []));
    expect((await store.poolMembers()).map((m) => m.launchId)).not.toContain(claimed?.launchId);
    expect(await store.redeemPoolClaim(claimed!.launchId, "t2")).toBe(true);
    await store.releasePoolClaim(claimed!, "t2");
    expect((await store.poolMembers()).map((m) => m.launchId)).not.toContain(claimed?.launchId);
    // A claim that lapsed (its forward never arrived): the holder's next relist shows the worker again.
    const lapsing = await store.claimPoolMember("r2", "t3", 100);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await store.relistPoolMembers([lapsing!]);
    expect((await store.poolMembers()).map((m) => m.launchId)).toContain(lapsing?.launchId);
  });

  it("offers no pool worker of a replica that stopped announcing itself or is draining", async () => {
    const store = await open();
    await store.announceReplica({ replicaId: "gone", address: "http://127.0.0.1:1", draining: false }, 150);
    await store.announceReplica({ replicaId: "leaving", address: "http://127.0.0.1:2", draining: true }, 60_000);
    await store.announceReplica({ replicaId: "live", address: "http://127.0.0.1:3", draining: false }, 60_000);
    await store.addPoolMember({ replicaId: "gone", launchId: "l1" });
    await store.addPoolMember({ replicaId: "leaving", launchId: "l2" });
    await store.addPoolMember({ replicaId: "live", launchId: "l3" });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await store.poolMembers()).toEqual([
      { replicaId: "leaving", launchId: "l2" },
      { replicaId: "live", launchId: "l3" },
    ]);
    expect(await store.claimPoolMember("other", "t1", 60_000)).toEqual({ replicaId: "live", launchId: "l3" });
    expect(await store.claimPoolMember("other", "t2", 60_000)).toBeUndefined();
    // The dead replica's member was dropped on the way; the draining one's stays listed (it may still claim it itself).
    expect(await store.poolMembers()).toEqual([{ replicaId: "leaving", launchId: "l2" }]);
  });

  it("keeps workers' resume digests and launches", async () => {
    const store = await open();
    await store.putWorker({ workerId: "w1", sessionId: "s1", launchId: "l1", resumeDigest: "abc" });
    expect(await store.getWorker("w1")).toEqual({ workerId: "w1", sessionId: "s1", launchId: "l1", resumeDigest: "abc" });
    await store.putLaunch("l1", { sessionId: null, replicaId: "r1" }, 60_000);
    expect(await store.getLaunch("l1")).toEqual({ sessionId: null, replicaId: "r1" });
    await store.deleteLaunch("l1");
    await store.deleteWorker("w1");
    expect(await store.getLaunch("l1")).toBeUndefined();
    expect(await store.getWorker("w1")).toBeUndefined();
  });

  it("binds a dynamic-sessions identifier once when twenty replicas claim it at once, and swaps or removes it only from the session it names", async () => {
    const store = await open();
    const binding = (replicaId: string, sessionId: string | null = null) => ({ sessionId, replicaId, createdAt: new Date(0).toISOString(), etag: `e-${replicaId}` });
    const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => store.adapters.claimIdentifier("alice", "id/1 ü", binding(`r${i}`))));
    expect(claims.filter((claim) => claim.won)).toHaveLength(1);
    const winner = claims.find((claim) => claim.won)!.binding;
    for (const claim of claims) expect(claim.binding).toEqual(winner);
    // Per tenant: bob's identifier of the same name is another one.
    expect(await store.adapters.getIdentifier("bob", "id/1 ü")).toBeUndefined();

    expect(await store.adapters.rebindIdentifier("alice", "id/1 ü", "ses_other", binding("r9", "ses_a"))).toBe(false);
    expect(await store.adapters.rebindIdentifier("alice", "id/1 ü", null, binding("r9", "ses_a"))).toBe(true);
    expect(await store.adapters.rebindIdentifier("alice", "id/1 ü", null, binding("r8", "ses_b"))).toBe(false);
    expect(await store.adapters.getIdentifier("alice", "id/1 ü")).toEqual(binding("r9", "ses_a"));
    await store.adapters.unbindIdentifier("alice", "id/1 ü", "ses_b");
    expect((await store.adapters.getIdentifier("alice", "id/1 ü"))?.sessionId).toBe("ses_a");
    await store.adapters.unbindIdentifier("alice", "id/1 ü", "ses_a");
    expect(await store.adapters.getIdentifier("alice", "id/1 ü")).toBeUndefined();
    expect(await store.adapters.rebindIdentifier("alice", "id/1 ü", "ses_a", binding("r9", "ses_c"))).toBe(false);
  });

  it("records which replica holds an MCP session until it is deleted or its TTL lapses unrefreshed", async () => {
    const store = await open();
    const initialize = { protocolVersion: "2025-06-18", capabilities: { elicitation: {} }, clientInfo: { name: "c", version: "1" } };
    await store.adapters.putMcpSession("mcp_1", { replicaId: "r1", tenant: "alice", tetherSessionId: null, initialize }, 60_000);
    await store.adapters.putMcpSession("mcp_2", { replicaId: "r2", tenant: "bob", tetherSessionId: "ses_b", initialize }, 200);
    expect(await store.adapters.getMcpSession("mcp_1")).toEqual({ replicaId: "r1", tenant: "alice", tetherSessionId: null, initialize });
    expect(await store.adapters.getMcpSession("mcp_2")).toEqual({ replicaId: "r2", tenant: "bob", tetherSessionId: "ses_b", initialize });
    expect((await store.adapters.listMcpSessions()).map(([id]) => id).sort()).toEqual(["mcp_1", "mcp_2"]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store.adapters.getMcpSession("mcp_2")).toBeUndefined();
    expect(await store.adapters.listMcpSessions()).toEqual([["mcp_1", { replicaId: "r1", tenant: "alice", tetherSessionId: null, initialize }]]);
    await store.adapters.deleteMcpSession("mcp_1");
    expect(await store.adapters.getMcpSession("mcp_1")).toBeUndefined();
  });

  it("swaps an MCP session record whatever its initialize carries (a lone surrogate, deep nesting)", async () => {
    const store = await open();
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 1500; i++) deep = { d: deep };
    const initialize = { protocolVersion: "2025-06-18", capabilities: { experimental: deep }, clientInfo: { name: "x\ud800y", version: "1" } };
    const record = (replicaId: string) => ({ replicaId, tenant: "alice", tetherSessionId: "ses_s", initialize });
    await store.adapters.putMcpSession("mcp_s", record("r1"), 60_000);
    expect(await store.adapters.swapMcpSession("mcp_s", "r1", record("r2"), 60_000)).toBe(true);
    expect((await store.adapters.getMcpSession("mcp_s"))?.replicaId).toBe("r2");
    expect(await store.adapters.swapMcpSession("mcp_s", "r2", null, 60_000)).toBe(true);
    expect(await store.adapters.getMcpSession("mcp_s")).toBeUndefined();
  });

  it("moves an MCP session record only from the replica it names: a release, a takeover and a stale refresh cannot undo each other", async () => {
    const store = await open();
    const initialize = { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "c", version: "1" } };
    const record = (replicaId: string, tetherSessionId: string | null = "ses_m") => ({ replicaId, tenant: "alice", tetherSessionId, initialize });
    await store.adapters.putMcpSession("mcp_m", record("r1", null), 60_000);
    expect(await store.adapters.swapMcpSession("mcp_m", "r1", record("r1"), 60_000)).toBe(true);
    // r1 lets it go; r2 takes it over; r1's late refresh changes nothing.
    expect(await store.adapters.swapMcpSession("mcp_m", "r1", record(""), 60_000)).toBe(true);
    expect(await store.adapters.swapMcpSession("mcp_m", "", record("r2"), 60_000)).toBe(true);
    expect(await store.adapters.swapMcpSession("mcp_m", "", record("r3"), 60_000)).toBe(false);
    expect(await store.adapters.swapMcpSession("mcp_m", "r1", record("r1"), 60_000)).toBe(false);
    expect(await store.adapters.getMcpSession("mcp_m")).toEqual(record("r2"));
    // Removal too, only by the holder; a gone record cannot be swapped back.
    expect(await store.adapters.swapMcpSession("mcp_m", "r1", null, 60_000)).toBe(false);
    expect(await store.adapters.swapMcpSession("mcp_m", "r2", null, 60_000)).toBe(true);
    expect(await store.adapters.getMcpSession("mcp_m")).toBeUndefined();
    expect(await store.adapters.swapMcpSession("mcp_m", "r2", record("r2"), 60_000)).toBe(false);
    // The TTL is set again with each swap.
    await store.adapters.putMcpSession("mcp_t", record("r1"), 60_000);
    expect(await store.adapters.swapMcpSession("mcp_t", "r1", record("r1"), 200)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store.adapters.getMcpSession("mcp_t")).toBeUndefined();
  });

  if (kind === "redis") {
    it("keeps events byte for byte with the worker watermark, trims what the owner dropped, and refuses a fenced append", async () => {
      const store = await open();
      const lease = (await store.acquireLease("e1", "r1"))!;
      const frame = (seq: number) => new TextEncoder().encode(`{"seq":${seq},"type":"stream","requestId":"x","name":"stdout","text":"é ${seq}\\n"}`);
      await store.persist("e1", { events: [1, 2, 3].map((seq) => ({ seq, requestId: "x", at: 1000 + seq, frame: frame(seq), done: false })), worker: { workerId: "w1", seq: 7 }, keepFromSeq: 1 }, lease);
      await store.persist("e1", { events: [{ seq: 4, requestId: null, at: 2000, frame: frame(4), done: true }], keepFromSeq: 3 }, lease);
      const journal = await store.readJournal("e1");
      expect(journal.worker).toEqual({ workerId: "w1", seq: 7 });
      expect(journal.lastSeq).toBe(4);
      expect(journal.events.map((e) => e.seq)).toEqual([3, 4]);
      expect(new TextDecoder().decode(journal.events[0]!.frame)).toBe(new TextDecoder().decode(frame(3)));
      expect(journal.events[0]).toMatchObject({ requestId: "x", at: 1003, done: false });
      expect(journal.events[1]).toMatchObject({ requestId: null, done: true });
    });

    it("skips events it already holds when a batch is retried (after a partial failure), keeping the first copy", async () => {
      const store = await open();
      const lease = (await store.acquireLease("e2", "r1"))!;
      const event = (seq: number, text: string) => ({ seq, requestId: "x", at: seq, frame: new TextEncoder().encode(text), done: false });
      await store.persist("e2", { events: [event(1, "one"), event(2, "two")], keepFromSeq: 1 }, lease);
      await store.persist("e2", { events: [event(2, "two again"), event(3, "three")], keepFromSeq: 1 }, lease);
      const journal = await store.readJournal("e2");
      expect(journal.events.map((e) => new TextDecoder().decode(e.frame))).toEqual(["one", "two", "three"]);
      expect(journal.lastSeq).toBe(3);
    });

    it("keeps its scripts working when Redis has forgotten them (SCRIPT FLUSH, a restart)", async () => {
      const store = await open();
      const admin = new Redis(redis.url);
      try {
        expect(await store.acquireLease("f1", "r1")).toEqual({ replicaId: "r1", epoch: 1 });
        await admin.script("FLUSH");
        expect(await store.acquireLease("f1", "r1")).toEqual({ replicaId: "r1", epoch: 1 });
        expect(await store.acquireLease("f2", "r1")).toEqual({ replicaId: "r1", epoch: 1 });
      } finally {
        admin.disconnect();
      }
    });

    it("fails fast with STORE_UNAVAILABLE while Redis is down, and works again once it is back", async () => {
      const store = await open();
      await redis.stop();
      try {
        const startedAt = Date.now();
        const error = await store.countSessions("alice").catch((e: unknown) => e);
        expect(error).toMatchObject({ code: ErrorCodes.STORE_UNAVAILABLE, statusCode: 503 });
        expect(Date.now() - startedAt).toBeLessThan(3000);
      } finally {
        await redis.restart();
      }
      await expect.poll(() => store.ping(), { timeout: 10_000 }).toBe(true);
      expect(await store.countSessions("alice")).toBe(0);
    });
  }
});
