import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { KERNEL_PID_CODE, hostPidOf, waitForExit } from "./helpers/processes.js";
import { expectStatus, RestClient, type ApiResponse } from "./helpers/rest.js";
import { StreamClient, attemptUpgrade, streamUrl } from "./helpers/ws.js";

describe("sessions", () => {
  let orchestrator: TestOrchestrator;
  let created: ApiResponse;
  let session: SessionInfo;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    created = await orchestrator.alice.request("POST", "/v1/sessions", { json: { metadata: { chat: "chat-1" } } });
    session = expectStatus<SessionInfo>(created, 201, "POST /v1/sessions");
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("creates a session that is ready, with its metadata and kernel", () => {
    expect(created.status).toBe(201);
    expect(session.id).toEqual(expect.any(String));
    expect(session.status).toBe("ready");
    expect(session.metadata).toEqual({ chat: "chat-1" });
    expect(Number.isNaN(Date.parse(session.createdAt))).toBe(false);
    expect(Number.isNaN(Date.parse(session.lastActivityAt))).toBe(false);
    expect(session.kernel?.language).toBe("python");
  });

  it("returns the session by id and lists it for its owner", async () => {
    const fetched = await orchestrator.alice.getSession(session.id);
    expect(fetched.id).toBe(session.id);
    expect(fetched.status).toBe("ready");
    const list = await orchestrator.alice.listSessions();
    expect(list.sessions.map((s) => s.id)).toContain(session.id);
  });

  it("keeps variables between executions", async () => {
    const first = await orchestrator.alice.execute(session.id, { code: "x = 41" });
    expect(first.status).toBe("ok");
    const second = await orchestrator.alice.execute(session.id, { code: "x + 1" });
    expect(second.status).toBe("ok");
    expect(second.outputs).toHaveLength(1);
    expect(second.outputs[0]?.type).toBe("execute_result");
    expect(second.outputs[0]?.data["text/plain"]).toBe("42");
    expect(second.executionCount).toBeGreaterThan(first.executionCount ?? 0);
  });

  it("runs concurrent executions one at a time, each with its own output", async () => {
    await orchestrator.alice.execute(session.id, { code: "import time\nran = []" });
    const codeFor = (label: string) =>
      `start = time.monotonic()\nran.append("${label}")\nprint("${label} says hi")\ntime.sleep(0.4)\nspans = globals().setdefault("spans", [])\nspans.append((start, time.monotonic()))`;
    const responses = await Promise.all(["a", "b", "c"].map((label) => orchestrator.alice.execute(session.id, { code: codeFor(label) })));

    for (const [i, label] of ["a", "b", "c"].entries()) {
      expect(responses[i]?.status).toBe("ok");
      expect(responses[i]?.stdout).toBe(`${label} says hi\n`);
    }
    const counts = responses.map((r) => r.executionCount ?? -1);
    expect(new Set(counts).size).toBe(3);

    // The kernel's own record: executions did not overlap, and ran in execution-count order.
    const check = await orchestrator.alice.execute(session.id, {
      code: "import json\nprint(json.dumps({'ran': ran, 'overlap': any(b[0] < a[1] for a, b in zip(sorted(spans), sorted(spans)[1:]))}))",
    });
    const record = JSON.parse(check.stdout) as { ran: string[]; overlap: boolean };
    expect(record.overlap).toBe(false);
    const byCount = ["a", "b", "c"].map((label, i) => ({ label, count: counts[i]! })).sort((p, q) => p.count - q.count);
    expect(record.ran).toEqual(byCount.map((p) => p.label));
  });

  it("runs executions sent on one stream in the order they were sent", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      await stream.nextMessage((m) => m.type === "hello");
      for (const id of ["q1", "q2", "q3"]) {
        stream.send({ type: "execute", requestId: id, code: `import time\ntime.sleep(0.2)\nprint("${id}")` });
      }
      const dones = [];
      for (;;) {
        const done = await stream.nextMessage((m) => m.type === "done");
        dones.push(done);
        if (dones.length === 3) break;
      }
      expect(dones.map((d) => d.requestId)).toEqual(["q1", "q2", "q3"]);
      const counts = dones.map((d) => (d.type === "done" ? (d.executionCount ?? -1) : -1));
      expect(counts[1]).toBe(counts[0]! + 1);
      expect(counts[2]).toBe(counts[1]! + 1);
      for (const id of ["q1", "q2", "q3"]) {
        const output = await stream.nextMessage((m) => m.type === "stream" && m.requestId === id);
        expect(output.type === "stream" && output.text).toBe(`${id}\n`);
      }
    } finally {
      await stream.close();
    }
  });

  it("runs an execution queued right behind one that raised, instead of dropping it", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      for (let round = 0; round < 5; round++) {
        // Sent together: the second waits in the orchestrator's queue and reaches the kernel right after the error.
        stream.send({ type: "execute", requestId: `raise-${round}`, code: "1 / 0" });
        stream.send({ type: "execute", requestId: `next-${round}`, code: `print("ran ${round}")` });
        const failed = await stream.collectUntilDone(`raise-${round}`);
        expect(failed.done.status).toBe("error");
        const next = await stream.collectUntilDone(`next-${round}`);
        expect({ round, status: next.done.status, stdout: next.text("stdout") }).toEqual({ round, status: "ok", stdout: `ran ${round}\n` });
      }
    } finally {
      await stream.close();
    }
  });

  // Twelve kernel restarts: ~20 s on an idle machine, more under load.
  it("runs the execution after an error on a freshly restarted kernel, instead of dropping it", { timeout: 120_000 }, async () => {
    const own = await orchestrator.alice.createSession(); // restarts would wipe the shared session's state
    try {
      for (let round = 0; round < 12; round++) {
        await orchestrator.alice.restart(own.id);
        const failed = await orchestrator.alice.execute(own.id, { code: "undefined_name" });
        expect(failed.error?.name).toBe("NameError");
        const next = await orchestrator.alice.execute(own.id, { code: `print("after error ${round}")` });
      // An execution that did not run must at least say why (error or failure); this one should simply run.
        expect({ round, status: next.status, stdout: next.stdout, error: next.error, failure: next.failure }).toEqual({
          round,
          status: "ok",
          stdout: `after error ${round}\n`,
          error: undefined,
          failure: undefined,
        });
      }
    } finally {
      await orchestrator.alice.deleteSession(own.id);
    }
  });

  it("refuses requests without an API key", async () => {
    const anonymous = orchestrator.alice.as(undefined);
    for (const [method, path] of [
      ["GET", "/v1/sessions"],
      ["POST", "/v1/sessions"],
      ["GET", `/v1/sessions/${session.id}`],
      ["POST", `/v1/sessions/${session.id}/execute`],
    ] as const) {
      const res = await anonymous.request(method, path, method === "POST" ? { json: { code: "1" } } : {});
      expect({ method, path, status: res.status, code: res.errorCode() }).toEqual({ method, path, status: 401, code: ErrorCodes.AUTH_MISSING });
    }
  });

  it("refuses requests with an unknown API key", async () => {
    const stranger = orchestrator.alice.as("key-nobody");
    for (const [method, path] of [
      ["GET", "/v1/sessions"],
      ["GET", `/v1/sessions/${session.id}`],
      ["POST", `/v1/sessions/${session.id}/execute`],
    ] as const) {
      const res = await stranger.request(method, path, method === "POST" ? { json: { code: "1" } } : {});
      expect({ method, path, status: res.status, code: res.errorCode() }).toEqual({ method, path, status: 401, code: ErrorCodes.AUTH_INVALID });
    }
    const malformed = await orchestrator.alice.request("GET", "/v1/sessions", { auth: false, headers: { authorization: "Basic abc" } });
    expect(malformed.status).toBe(401);
    expect([ErrorCodes.AUTH_INVALID, ErrorCodes.AUTH_MISSING]).toContain(malformed.errorCode());
  });

  it("hides a session from another tenant on every route", async () => {
    const { bob } = orchestrator;
    expect((await orchestrator.alice.execute(session.id, { code: 'owner = "alice"' })).status).toBe("ok");
    const base = `/v1/sessions/${session.id}`;
    const attempts: [string, string, Parameters<RestClient["request"]>[2]][] = [
      ["GET", base, {}],
      ["POST", `${base}/execute`, { json: { code: "print('bob was here')" } }],
      ["POST", `${base}/interrupt`, {}],
      ["POST", `${base}/restart`, {}],
      ["GET", `${base}/files`, {}],
      ["GET", `${base}/files/anything.txt`, {}],
      ["PUT", `${base}/files/bob.txt`, { body: "bob", headers: { "content-type": "application/octet-stream" } }],
      ["DELETE", `${base}/files/anything.txt`, {}],
      ["DELETE", base, {}],
    ];
    for (const [method, path, options] of attempts) {
      const res = await bob.request(method, path, options);
      expect({ method, path, status: res.status, code: res.errorCode() }).toEqual({
        method,
        path,
        status: 404,
        code: ErrorCodes.SESSION_NOT_FOUND,
      });
    }

    const upgrade = await attemptUpgrade(streamUrl(orchestrator.url, session.id), { authorization: `Bearer ${orchestrator.keys.bob}` });
    expect(upgrade.code).toBe(ErrorCodes.SESSION_NOT_FOUND);
    if (upgrade.kind === "http") expect(upgrade.status).toBe(404);
    else expect(upgrade.sawHello).toBe(false);

    const bobsList = await bob.listSessions();
    expect(bobsList.sessions.map((s) => s.id)).not.toContain(session.id);

    // Nothing bob tried touched alice's session.
    const still = await orchestrator.alice.execute(session.id, { code: "import os\nprint(os.path.exists('bob.txt'), owner)" });
    expect(still.stdout).toBe("False alice\n");
  });

  it("answers 404 for a session id that does not exist", async () => {
    const res = await orchestrator.alice.request("GET", "/v1/sessions/no-such-session");
    expect(res.status).toBe(404);
    expect(res.errorCode()).toBe(ErrorCodes.SESSION_NOT_FOUND);
    const exec = await orchestrator.alice.request("POST", "/v1/sessions/no-such-session/execute", { json: { code: "1" } });
    expect(exec.status).toBe(404);
    expect(exec.errorCode()).toBe(ErrorCodes.SESSION_NOT_FOUND);
  });

  it("rejects execute bodies that do not match the schema with TETHER_ERR_REQUEST_INVALID", async () => {
    const bodies: unknown[] = [
      {},
      { code: 42 },
      { code: "1", timeoutMs: 0 },
      { code: "1", timeoutMs: "soon" },
      { code: "1", stdin: "Ada" },
      { code: "1", unexpected: true },
    ];
    for (const body of bodies) {
      const res = await orchestrator.alice.request("POST", `/v1/sessions/${session.id}/execute`, { json: body });
      expect({ body, status: res.status, code: res.errorCode() }).toEqual({ body, status: 400, code: ErrorCodes.REQUEST_INVALID });
    }
    const badMetadata = await orchestrator.alice.request("POST", "/v1/sessions", { json: { metadata: { chat: 7 } } });
    expect(badMetadata.status).toBe(400);
    expect(badMetadata.errorCode()).toBe(ErrorCodes.REQUEST_INVALID);
  });

  it("rejects malformed JSON with TETHER_ERR_REQUEST_MALFORMED_JSON", async () => {
    const res = await orchestrator.alice.request("POST", `/v1/sessions/${session.id}/execute`, {
      body: '{"code": "1"',
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.errorCode()).toBe(ErrorCodes.REQUEST_MALFORMED_JSON);
  });

  it("answers /healthz without authentication", async () => {
    const res = await orchestrator.alice.request("GET", "/healthz", { auth: false });
    expect(res.status).toBe(200);
  });

  it("deletes a session: it is gone from get and list, and its kernel process exits", async () => {
    const doomed = await orchestrator.alice.createSession();
    const pid = await orchestrator.alice.execute(doomed.id, { code: KERNEL_PID_CODE });
    const kernelPid = await hostPidOf(pid.stdout);
    expect(kernelPid).toBeGreaterThan(0);

    const res = await orchestrator.alice.request("DELETE", `/v1/sessions/${doomed.id}`);
    expect(res.status).toBe(204);
    const gone = await orchestrator.alice.request("GET", `/v1/sessions/${doomed.id}`);
    expect(gone.status).toBe(404);
    expect(gone.errorCode()).toBe(ErrorCodes.SESSION_NOT_FOUND);
    expect((await orchestrator.alice.listSessions()).sessions.map((s) => s.id)).not.toContain(doomed.id);
    expect(await waitForExit(kernelPid, 10_000)).toBe(true);

    const again = await orchestrator.alice.request("DELETE", `/v1/sessions/${doomed.id}`);
    expect(again.status).toBe(404);
  });
});

describe("orchestrator start-up", () => {
  it("refuses to start when TETHER_PYTHON names an interpreter without Jupyter, naming the fix", async () => {
    // Any interpreter lacking jupyter_server would do; /bin/false exists on every machine.
    const attempt = startTestOrchestrator({ TETHER_PYTHON: "/bin/false" });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCodes.RUNTIME_PYTHON_NOT_FOUND, hint: expect.stringContaining("apt-get install") });
  });
});
