import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, PROTOCOL_VERSION, type ExecutionView, type OrchestratorMessage } from "@tether/shared";
import { startTestCluster, type TestCluster } from "./helpers/cluster.js";
import { expectStatus } from "./helpers/rest.js";
import { JsonSocket, StreamClient } from "./helpers/ws.js";

/**
 * Three orchestrator processes on one redis-server behind a round-robin
 * balancer: any replica serves any request, whoever owns the session.
 */
describe("a cluster of replicas on Redis", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ env: { TETHER_MAX_SESSIONS_PER_TENANT: "3" } });
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
  }, 60_000);

  it("creates a session through one replica, executes through a second and streams through a third", { timeout: 120_000 }, async () => {
    const [first, second, third] = cluster.replicas;
    const session = await cluster.direct(first!).createSession({ purpose: "routing" });
    expect((await cluster.ownerOf(session.id))?.index).toBe(first!.index);

    const stream = await StreamClient.open(third!.url, session.id, cluster.direct(third!).key!);
    const executed = await cluster.direct(second!).execute(session.id, { code: "x = 6 * 7\nprint('from a second replica'); x" });
    expect(executed.status).toBe("ok");
    expect(executed.stdout).toBe("from a second replica\n");
    expect(executed.outputs).toEqual([expect.objectContaining({ type: "execute_result", data: expect.objectContaining({ "text/plain": "42" }) })]);
    // The third replica's stream saw it all, numbered.
    const done = await stream.nextMessage((m) => m.type === "done");
    expect(done).toMatchObject({ status: "ok" });
    expect((done as { seq?: number }).seq).toBeGreaterThan(0);
    await stream.close();

    // Every replica answers for it, and lists it.
    for (const replica of cluster.replicas) {
      expect((await cluster.direct(replica).getSession(session.id)).metadata).toEqual({ purpose: "routing" });
      expect((await cluster.direct(replica).listSessions()).sessions.map((s) => s.id)).toContain(session.id);
    }
    // Another tenant sees nothing of it, on any replica.
    for (const replica of cluster.replicas) {
      expect((await cluster.direct(replica, "bob").request("GET", `/v1/sessions/${session.id}`)).status).toBe(404);
      expect((await cluster.direct(replica, "bob").listSessions()).sessions).toEqual([]);
    }
    // Files through yet another path.
    expect((await cluster.direct(third!).putFile(session.id, "notes.txt", "kept")).status).toBe(200);
    expect((await cluster.direct(second!).getFile(session.id, "notes.txt")).text()).toBe("kept");
    await cluster.direct(second!).deleteSession(session.id);
    for (const replica of cluster.replicas) expect((await cluster.direct(replica).request("GET", `/v1/sessions/${session.id}`)).status).toBe(404);
  });

  it("follows an execution accepted on one replica from another, and long-polls it from a third", { timeout: 120_000 }, async () => {
    const [first, second, third] = cluster.replicas;
    const session = await cluster.direct(first!).createSession();
    const accepted = await cluster.direct(second!).request("POST", `/v1/sessions/${session.id}/execute`, { json: { code: "import time; time.sleep(1); print('late')", wait: false, requestId: "polled" } });
    expect(accepted.status).toBe(202);
    const view = expectStatus<ExecutionView>(await cluster.direct(third!).request("GET", `/v1/sessions/${session.id}/executions/polled?waitMs=30000`), 200, "GET execution");
    expect(view).toMatchObject({ status: "ok", stdout: "late\n" });
    await cluster.alice.deleteSession(session.id);
  });


  it("an owner whose lease is gone (a hand-over released it) acts as owner no more: an execute gets a retryable 503, nothing runs there, and the retry runs on the session's next owner", { timeout: 120_000 }, async () => {
    const session = await cluster.alice.createSession();
    await cluster.alice.execute(session.id, { code: "kept = 'still here'" });
    const owner = (await cluster.ownerOf(session.id))!;
    const { Redis } = await import("ioredis");
    const redis = new Redis(cluster.redis.url);
    try {
      // What a draining replica's release does, without the rest of its hand-over: the window where an execute used to get HTTP 500.
      await redis.del(`tether:lease:${session.id}`);
      const refused = await cluster.direct(owner).request("POST", `/v1/sessions/${session.id}/execute`, { json: { code: "ran_on_old_owner = True", requestId: "fenced" } });
      expect(refused.status).toBe(503);
      expect(refused.errorCode()).toBe(ErrorCodes.SESSION_MOVED);
      expect(refused.headers["retry-after"]).toBeDefined();
      // Nothing was queued for the next owner to run either.
      expect(await redis.hget(`tether:executions:${session.id}`, "fenced")).toBeNull();
    } finally {
      redis.disconnect();
    }
    // The client retries (as Retry-After says): the session goes on, its kernel and variables with it.
    let retried: ExecutionView | undefined;
    for (let attempt = 0; attempt < 60 && !retried; attempt++) {
      const response = await cluster.alice.request("POST", `/v1/sessions/${session.id}/execute`, { json: { code: "print(kept, 'ran_on_old_owner' in dir())" } });
      if (response.status === 200) retried = response.json<ExecutionView>();
      else {
        expect(response.status).toBe(503);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    expect(retried).toMatchObject({ status: "ok", stdout: "still here False\n" });
    await cluster.alice.deleteSession(session.id);
  });

  it("refuses a worker's join token replayed against every replica, and lets no one else resume its link", { timeout: 120_000 }, async () => {
    const session = await cluster.alice.createSession();
    // What a worker sent on the wire: its hello with the (now spent) join token.
    const hello = cluster.workerWire.firstFramesFromWorkers().find((frame) => frame.includes('"type":"hello"'));
    expect(hello).toBeDefined();
    for (const replica of cluster.replicas) {
      const socket = await JsonSocket.connect<OrchestratorMessage>(`${replica.url.replace("http", "ws")}/v1/workers/connect`);
      socket.send(hello!);
      expect(await socket.nextMessage((m) => m.type === "join_refused")).toMatchObject({ code: ErrorCodes.WORKER_TOKEN_REUSED });
      // A resume with a made-up token for this worker is refused too.
      const resume = await JsonSocket.connect<OrchestratorMessage>(`${replica.url.replace("http", "ws")}/v1/workers/connect`);
      resume.send({ type: "resume", protocolVersion: PROTOCOL_VERSION, workerId: "wrk_0000", resumeToken: "guess", lastSeqReceived: 0 });
      expect(await resume.nextMessage((m) => m.type === "join_refused")).toMatchObject({ code: ErrorCodes.WORKER_RESUME_REFUSED });
    }
    // The session's worker never noticed.
    expect((await cluster.alice.execute(session.id, { code: "print('still mine')" })).stdout).toBe("still mine\n");
    await cluster.alice.deleteSession(session.id);
  });

  it("counts a tenant's sessions across replicas against its quota", { timeout: 180_000 }, async () => {
    const created = [];
    for (const replica of cluster.replicas) created.push(await cluster.direct(replica).createSession());
    // Three sessions on three replicas: the fourth is refused on any of them.
    for (const replica of cluster.replicas) {
      const refused = await cluster.direct(replica).request("POST", "/v1/sessions", { json: {} });
      expect(refused.status).toBe(429);
      expect(refused.errorCode()).toBe(ErrorCodes.SESSION_QUOTA_EXCEEDED);
    }
    // Bob has his own quota.
    const bobs = await cluster.bob.createSession();
    await cluster.bob.deleteSession(bobs.id);
    await Promise.all(created.map((session) => cluster.alice.deleteSession(session.id)));
  });
});
