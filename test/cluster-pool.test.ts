import { request as httpRequest } from "node:http";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import type { PoolStatus } from "@tether/shared";
import { withTestCluster, type TestCluster } from "./helpers/cluster.js";
import { KEYS } from "./helpers/orchestrator.js";
import type { RestClient } from "./helpers/rest.js";
import { waitForPool } from "./helpers/pool.js";

/** The kernel's process id: two sessions on one worker would print the same. */
async function kernelPid(client: RestClient, sessionId: string): Promise<string> {
  const ran = await client.execute(sessionId, { code: "import os; print(os.getpid())" });
  expect(ran.status).toBe("ok");
  return ran.stdout.trim();
}

/**
 * Three replicas on one Redis; only the first keeps a warm pool (two
 * workers). Creates through the other two, whose own pools are empty, get
 * the first replica's idle workers: the session is created there.
 */
/** POST /v1/sessions with one padding header of `pad` bytes: within Node's 16 KiB header limit where it lands, over it once forwarded with two more headers. */
function paddedCreate(port: number, pad: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const headers = { authorization: `Bearer ${KEYS.alice}`, "content-type": "application/json", "content-length": "2", "x-pad": "a".repeat(pad) };
    const req = httpRequest({ host: "127.0.0.1", port, method: "POST", path: "/v1/sessions", agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", (error) => resolve({ status: -1, body: error.message }));
    req.end("{}");
  });
}

describe("the warm pool across a cluster", () => {
  let cluster: TestCluster;
  let redis: Redis;

  withTestCluster({ envFor: (index) => ({ TETHER_POOL_SIZE: index === 0 ? "2" : "0" }) }, (started, client) => {
    cluster = started;
    redis = client;
  });

  const idleEverywhere = (count: number) => (pool: PoolStatus) => pool.cluster?.idle === count;

  it("reports every replica's idle pool workers on GET /v1/pool, from any replica", { timeout: 120_000 }, async () => {
    const [holder, other] = cluster.replicas;
    const seen = await waitForPool(cluster.direct(other!), idleEverywhere(2), 90_000);
    // Its own pool is empty (TETHER_POOL_SIZE=0); the first replica's two are listed.
    expect(seen).toMatchObject({ target: 0, ready: 0, starting: 0 });
    expect(seen.cluster?.replicaId).toBe(other!.replicaId);
    expect(seen.cluster?.replicas).toHaveLength(3);
    expect(seen.cluster?.replicas.find((replica) => replica.replicaId === holder!.replicaId)).toEqual({ replicaId: holder!.replicaId, idle: 2, draining: false });
    expect(seen.cluster?.replicas.filter((replica) => replica.idle === 0)).toHaveLength(2);
  });

  it("a claim the holder refuses (here 431: headers too large once forwarded) puts its worker back on the list at once", { timeout: 180_000 }, async () => {
    const [holder, other] = [cluster.replicas[0]!, cluster.replicas[1]!];
    // The largest padding the holder accepts directly (it serves the create itself: no hop, no extra headers).
    let pad = 16_400;
    for (; pad > 15_000; pad -= 10) {
      const direct = await paddedCreate(holder.port, pad);
      if (direct.status === 201) {
        await cluster.alice.deleteSession((JSON.parse(direct.body) as { id: string }).id);
        break;
      }
    }
    await waitForPool(cluster.direct(other), idleEverywhere(2), 90_000);
    // Through another replica the same request is forwarded with two more headers: the holder refuses it before redeeming the claim.
    const refused = [await paddedCreate(other.port, pad), await paddedCreate(other.port, pad)];
    expect(refused.map((answer) => answer.status)).toEqual([431, 431]);
    // Before the fix the claimed workers stayed off the list until their claims lapsed (30 s) and never came back.
    await waitForPool(cluster.direct(other), idleEverywhere(2), 5_000);
    const session = await cluster.direct(other).createSession();
    expect(session.workerSource).toBe("pool");
    await cluster.alice.deleteSession(session.id);
  });

  it("creates a session through a replica with an empty pool on another replica's idle worker (a warm start)", { timeout: 120_000 }, async () => {
    const [holder, other] = cluster.replicas;
    await waitForPool(cluster.direct(other!), idleEverywhere(2), 90_000);
    const startedAt = performance.now();
    const session = await cluster.direct(other!).createSession({ purpose: "peer pool" });
    const ran = await cluster.direct(other!).execute(session.id, { code: "print('warm')" });
    const toFirstResultMs = performance.now() - startedAt;
    expect(ran.stdout).toBe("warm\n");
    expect(session).toMatchObject({ status: "ready", workerSource: "pool", metadata: { purpose: "peer pool" } });
    // Created where the worker idled, and served from there through any replica.
    expect((await cluster.ownerOf(session.id))?.index).toBe(holder!.index);
    expect((await cluster.direct(cluster.replicas[2]!).getSession(session.id)).workerSource).toBe("pool");
    console.info(`create through a replica with an empty pool + first result: ${toFirstResultMs.toFixed(0)} ms (another replica's pool worker)`);
    await cluster.alice.deleteSession(session.id);
  });

  it("never gives one pool worker to two sessions when two replicas claim at once; the create left without one starts cold", { timeout: 180_000 }, async () => {
    const [holder, second, third] = cluster.replicas;
    await waitForPool(cluster.direct(second!), idleEverywhere(2), 90_000);
    const sessions = await Promise.all([cluster.direct(second!).createSession(), cluster.direct(third!).createSession(), cluster.direct(second!, "bob").createSession()]);
    const clients = [cluster.direct(second!), cluster.direct(third!), cluster.direct(second!, "bob")];
    const pids = await Promise.all(sessions.map((session, index) => kernelPid(clients[index]!, session.id)));
    expect(new Set(pids).size).toBe(3);
    const warm = sessions.filter((session) => session.workerSource === "pool");
    expect(warm).toHaveLength(2);
    expect(sessions.filter((session) => session.workerSource === "launch")).toHaveLength(1);
    for (const session of warm) expect((await cluster.ownerOf(session.id))?.index).toBe(holder!.index);
    await Promise.all(sessions.map((session, index) => clients[index]!.deleteSession(session.id)));
  });

  it("serves a create whose claimed worker is gone from the holder's other idle workers, and skips a dead replica's workers", { timeout: 180_000 }, async () => {
    const [holder, other] = cluster.replicas;
    await waitForPool(cluster.direct(other!), idleEverywhere(2), 90_000);
    // Listed before the real ones: a worker of the holder that is gone meanwhile, and one of a replica that died.
    const stale = `${holder!.replicaId}|lch_${"0".repeat(32)}`;
    await redis.zadd("tether:pool", 1, `rep_deadbeefdeadbeef|lch_${"1".repeat(32)}`, 2, stale);
    const first = await cluster.direct(other!).createSession();
    // The claim named the stale worker; the holder served it from its pool anyway.
    expect(first.workerSource).toBe("pool");
    expect((await cluster.ownerOf(first.id))?.index).toBe(holder!.index);
    expect(await redis.zscore("tether:pool", `rep_deadbeefdeadbeef|lch_${"1".repeat(32)}`)).toBeNull();

    await cluster.alice.deleteSession(first.id);
  });
});
