import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type ServerMessage, type SessionInfo, type SessionPhase } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { expectStatus } from "./helpers/rest.js";
import { StreamClient } from "./helpers/ws.js";
import { waitForPool } from "./helpers/pool.js";

describe("the warm pool", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_POOL_SIZE: "2", TETHER_POOL_PRELOAD: "import json\npreloaded = 'yes'" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("fills to its target with ready workers", async () => {
    const pool = await waitForPool(orchestrator.alice, (p) => p.ready === 2);
    expect(pool).toEqual({ target: 2, ready: 2, starting: 0 });
  });

  it("hands a worker that was already ready to POST /v1/sessions, with the preload run, and refills", async () => {
    await waitForPool(orchestrator.alice, (p) => p.ready === 2);
    const startedAt = performance.now();
    const session = await orchestrator.alice.createSession();
    const first = await orchestrator.alice.execute(session.id, { code: "print(preloaded, json.dumps([1]))" });
    const claimToResultMs = performance.now() - startedAt;
    // One of the two ready workers was taken (not launched for this request), and a replacement is starting.
    const after = await waitForPool(orchestrator.alice, () => true);
    expect(after).toEqual({ target: 2, ready: 1, starting: 1 });
    expect(session).toMatchObject({ status: "ready", phase: "ready", workerSource: "pool" });
    expect(first).toMatchObject({ status: "ok", stdout: "yes [1]\n", resumed: false });
    console.info(`warm-pool create + first result: ${claimToResultMs.toFixed(1)} ms`);

    expect(await waitForPool(orchestrator.alice, (p) => p.ready === 2)).toEqual({ target: 2, ready: 2, starting: 0 });
    await orchestrator.alice.deleteSession(session.id);
  });

  it("gives two sessions claimed from the same pool nothing in common: no variables, no files, not the same kernel", async () => {
    await waitForPool(orchestrator.alice, (p) => p.ready === 2);
    const [a, b] = [await orchestrator.alice.createSession(), await orchestrator.bob.createSession()];
    // The kernel's PID namespace and pid (sandboxed kernels number their own processes), and its cwd's inode
    // (sandboxed kernels all see their workspace at /mnt/data).
    const where = "import os\nprint(os.readlink('/proc/self/ns/pid') + ':' + str(os.getpid()), os.stat(os.getcwd()).st_ino)";
    const wroteA = await orchestrator.alice.execute(a!.id, { code: `secret = 42\nopen('secret.txt', 'w').write('for a only')\n${where}` });
    expect(wroteA.status).toBe("ok");

    const readB = await orchestrator.bob.execute(b!.id, { code: "secret" });
    expect(readB.status).toBe("error");
    expect(readB.error?.name).toBe("NameError");
    expect((await orchestrator.bob.listFiles(b!.id)).files).toEqual([]);
    expect((await orchestrator.bob.getFile(b!.id, "secret.txt")).status).toBe(404);
    const placeB = await orchestrator.bob.execute(b!.id, { code: `${where}\nprint(os.path.exists('secret.txt'))` });
    const [pidA, cwdA] = wroteA.stdout.trim().split(" ");
    const [line, exists] = placeB.stdout.trim().split("\n");
    const [pidB, cwdB] = line!.split(" ");
    expect(exists).toBe("False");
    expect(pidB).not.toBe(pidA);
    expect(cwdB).not.toBe(cwdA);

    await orchestrator.alice.deleteSession(a!.id);
    await orchestrator.bob.deleteSession(b!.id);
  });
});

describe("start limits and start progress", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_MAX_CONCURRENT_STARTS: "1", TETHER_MAX_SESSIONS_PER_TENANT: "2" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("answers wait:false with 202 at once, refuses a start over TETHER_MAX_CONCURRENT_STARTS with 429, and reports the phases up to ready", async () => {
    const accepted = await orchestrator.alice.request("POST", "/v1/sessions", { json: { wait: false } });
    const session = expectStatus<SessionInfo>(accepted, 202, "POST /v1/sessions wait:false");
    expect(session.status).toBe("starting");
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      // The only start slot is taken by the start in progress.
      const refused = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
      expect(refused.status).toBe(429);
      expect(refused.errorCode()).toBe(ErrorCodes.SESSION_START_LIMIT);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);

      const hello = await stream.nextMessage((m) => m.type === "hello");
      const phases: SessionPhase[] = [];
      if (hello.type === "hello" && hello.phase) phases.push(hello.phase);
      while (phases.at(-1) !== "ready") {
        const status = await stream.nextMessage((m) => m.type === "session_status");
        if (status.type === "session_status") phases.push(status.phase);
      }
      const order: SessionPhase[] = ["queued", "launching", "connected", "ready"];
      const indexes = phases.map((phase) => order.indexOf(phase));
      expect(indexes.every((index, i) => index >= 0 && (i === 0 || index > indexes[i - 1]!))).toBe(true);
      expect(phases).toContain("connected");
      // No pool here: launched for it.
      expect(await orchestrator.alice.getSession(session.id)).toMatchObject({ status: "ready", phase: "ready", workerSource: "launch" });
      const ran = await stream.run("first", "print('hello')");
      expect(ran.done.status).toBe("ok");
    } finally {
      await stream.close();
    }
  });

  it("refuses a session over the tenant quota with 429 and Retry-After, and counts per tenant", async () => {
    const held = (await orchestrator.alice.listSessions()).sessions.length;
    const extra: SessionInfo[] = [];
    for (let i = held; i < 2; i++) extra.push(await orchestrator.alice.createSession());
    const refused = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(refused.status).toBe(429);
    expect(refused.errorCode()).toBe(ErrorCodes.SESSION_QUOTA_EXCEEDED);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    // Another tenant is not affected.
    const bobs = await orchestrator.bob.createSession();
    await orchestrator.bob.deleteSession(bobs.id);
    // Deleting one frees a place.
    const [first] = (await orchestrator.alice.listSessions()).sessions;
    await orchestrator.alice.deleteSession(first!.id);
    const again = await orchestrator.alice.createSession();
    expect(again.status).toBe("ready");
  });

  it("reports a start that fails with wait:false as failed, with the reason, on GET and on the websocket", async () => {
    for (const s of (await orchestrator.alice.listSessions()).sessions) await orchestrator.alice.deleteSession(s.id);
    // Answers the start-up Python probe (which runs even with TETHER_PYTHON set), then fails every launch with exit code 7.
    const brokenWorker = `"process.argv.includes('--probe-python') ? console.log(JSON.stringify({ ok: true, python: 'python3-not-probed' })) : process.exit(7)"`;
    const broken = await startTestOrchestrator({ TETHER_WORKER_COMMAND: `${process.execPath} -e ${brokenWorker} --`, TETHER_PYTHON: "python3-not-probed" });
    try {
      const accepted = expectStatus<SessionInfo>(await broken.alice.request("POST", "/v1/sessions", { json: { wait: false } }), 202, "POST");
      let info = await broken.alice.getSession(accepted.id);
      for (let i = 0; i < 200 && info.status === "starting"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        info = await broken.alice.getSession(accepted.id);
      }
      expect(info).toMatchObject({ status: "failed", phase: "failed", failure: { code: ErrorCodes.SESSION_START_FAILED } });
      expect(info.failure?.message).toContain("code 7");
      const stream = await StreamClient.open(broken.url, accepted.id, broken.keys.alice);
      const hello = (await stream.nextMessage((m) => m.type === "hello")) as Extract<ServerMessage, { type: "hello" }>;
      expect(hello).toMatchObject({ status: "failed", phase: "failed" });
      await stream.close();
      const refused = await broken.alice.request("POST", `/v1/sessions/${accepted.id}/execute`, { json: { code: "1" } });
      expect(refused.errorCode()).toBe(ErrorCodes.SESSION_FAILED);
    } finally {
      await broken.close();
    }
  });
});
