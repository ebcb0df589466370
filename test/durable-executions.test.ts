import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type ExecutionList, type ExecutionView, type ServerMessage } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { expectStatus } from "./helpers/rest.js";
import { StreamClient, attemptUpgrade, streamUrl } from "./helpers/ws.js";

type Numbered = ServerMessage & { seq?: number };
const LINES = 10_000;
const PRINT_LINES = ["import sys, time", `for i in range(${LINES}):`, "    print(f'line {i}')", "    if i % 500 == 499:", "        sys.stdout.flush()", "        time.sleep(0.05)"].join("\n");

describe("executions as resources with a replayable event log", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_EVENT_LOG_MAX_BYTES: String(4 * 1024 * 1024) });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("lets a client that dropped mid-execution reconnect with ?after= and see every line exactly once", { timeout: 90_000 }, async () => {
    const session = await orchestrator.alice.createSession();
    const seen: Numbered[] = [];
    const first = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    first.socket.on("message", (data) => seen.push(JSON.parse(data.toString()) as Numbered));
    first.send({ type: "execute", requestId: "lines", code: PRINT_LINES });
    // Drop the connection once some output has arrived, without a close handshake.
    await first.nextMessage((m) => m.type === "stream" && m.text.includes("line 2000\n"));
    first.socket.terminate();
    const lastSeq = Math.max(...seen.map((m) => m.seq ?? 0));
    expect(lastSeq).toBeGreaterThan(0);

    const resumed = new StreamClientAfter(orchestrator, session.id, lastSeq);
    const rest = await resumed.untilDone("lines");
    const all = [...seen.filter((m) => (m.seq ?? 0) <= lastSeq), ...rest];
    const seqs = all.map((m) => m.seq).filter((seq): seq is number => seq !== undefined);
    // Strictly increasing: no message twice.
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    const text = all.filter((m): m is Extract<Numbered, { type: "stream" }> => m.type === "stream" && m.requestId === "lines").map((m) => m.text).join("");
    const lines = text.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toEqual(Array.from({ length: LINES }, (_, i) => `line ${i}`));
    expect(all.filter((m) => m.type === "done" && m.requestId === "lines")).toHaveLength(1);
    resumed.close();
    await orchestrator.alice.deleteSession(session.id);
  });

  it("answers execute with wait:false at once (202), and GET .../executions/:requestId long-polls the same body a synchronous execute returns", async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      const accepted = await alice.request("POST", `/v1/sessions/${session.id}/execute`, { json: { code: "import time\ntime.sleep(1)\nprint('slow'); 6 * 7", wait: false } });
      expect(accepted.status).toBe(202);
      const { requestId, status } = accepted.json<{ requestId: string; status: string }>();
      expect(["queued", "running"]).toContain(status);
      const early = expectStatus<ExecutionView>(await alice.request("GET", `/v1/sessions/${session.id}/executions/${requestId}`), 200, "GET execution");
      expect(["queued", "running"]).toContain(early.status);
      const final = expectStatus<ExecutionView>(await alice.request("GET", `/v1/sessions/${session.id}/executions/${requestId}?waitMs=30000`), 200, "GET execution");
      expect(final).toMatchObject({ requestId, status: "ok", stdout: "slow\n", outputs: [{ type: "execute_result", data: { "text/plain": "42" } }] });
      const list = expectStatus<ExecutionList>(await alice.request("GET", `/v1/sessions/${session.id}/executions`), 200, "GET executions");
      expect(list.executions[0]).toMatchObject({ requestId, status: "ok" });
    } finally {
      await alice.deleteSession(session.id);
    }
  });

  it("keeps the result of an execution whose HTTP request dropped, under the client's own requestId", async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      const url = new URL(`/v1/sessions/${session.id}/execute`, orchestrator.url);
      const body = JSON.stringify({ code: "import time\ntime.sleep(1.5)\nprint('survived the drop')", requestId: "mine-1" });
      await new Promise<void>((resolve) => {
        const req = httpRequest(url, { method: "POST", headers: { authorization: `Bearer ${orchestrator.keys.alice}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } });
        req.on("error", () => resolve());
        req.end(body, () => setTimeout(() => {
          req.destroy();
          resolve();
        }, 300));
      });
      const result = expectStatus<ExecutionView>(await alice.request("GET", `/v1/sessions/${session.id}/executions/mine-1?waitMs=30000`), 200, "GET execution");
      expect(result).toMatchObject({ requestId: "mine-1", status: "ok", stdout: "survived the drop\n" });
      const unknown = await alice.request("GET", `/v1/sessions/${session.id}/executions/never-ran`);
      expect({ status: unknown.status, code: unknown.errorCode() }).toEqual({ status: 404, code: ErrorCodes.EXEC_UNKNOWN_REQUEST });
    } finally {
      await alice.deleteSession(session.id);
    }
  });

  it("never runs a requestId twice while its record is kept: a POST retried after its execution ended gets 409 and the first result stays readable", async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      await alice.execute(session.id, { code: "runs = 0" });
      const first = await alice.execute(session.id, { code: "runs += 1\nprint(runs)", requestId: "retried-1" });
      expect(first).toMatchObject({ status: "ok", stdout: "1\n" });
      const retried = await alice.request("POST", `/v1/sessions/${session.id}/execute`, { json: { code: "runs += 1\nprint(runs)", requestId: "retried-1" } });
      expect({ status: retried.status, code: retried.errorCode() }).toEqual({ status: 409, code: ErrorCodes.EXEC_DUPLICATE_REQUEST_ID });
      expect(retried.text()).toContain("/executions/retried-1");
      // The code ran once; the session and the first result are intact.
      expect((await alice.execute(session.id, { code: "print(runs)" })).stdout).toBe("1\n");
      const kept = expectStatus<ExecutionView>(await alice.request("GET", `/v1/sessions/${session.id}/executions/retried-1`), 200, "GET execution");
      expect(kept).toMatchObject({ status: "ok", stdout: "1\n" });
    } finally {
      await alice.deleteSession(session.id);
    }
  });

  it("keeps the log within its byte budget under output nobody reads, and refuses ?after= for what is gone with 410", { timeout: 60_000 }, async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      const flood = await alice.execute(session.id, { code: 'line = "q" * 1023\nfor i in range(20 * 1024):\n    print(line)' });
      expect(flood.status).toBe("ok");
      const log = orchestrator.app.tether.registry.get("alice", session.id).events.log;
      expect(log.retainedBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
      expect(log.oldestSeq).toBeGreaterThan(1);
      const refused = await attemptUpgrade(`${streamUrl(orchestrator.url, session.id)}?after=0`, { authorization: `Bearer ${orchestrator.keys.alice}` });
      expect(refused).toMatchObject({ kind: "http", status: 410, code: ErrorCodes.EVENTS_EXPIRED });
    } finally {
      await alice.deleteSession(session.id);
    }
  });
});

/** A stream opened with ?after=, collecting numbered messages. */
class StreamClientAfter {
  private client: Promise<StreamClient>;
  constructor(orchestrator: TestOrchestrator, sessionId: string, after: number) {
    this.client = StreamClient.openUrl(`${streamUrl(orchestrator.url, sessionId)}?after=${after}`, orchestrator.keys.alice);
  }
  async untilDone(requestId: string): Promise<Numbered[]> {
    const client = await this.client;
    const got: Numbered[] = [];
    for (;;) {
      const message = (await client.nextMessage((m) => m.type !== "hello", 60_000)) as Numbered;
      got.push(message);
      if (message.type === "done" && message.requestId === requestId) return got;
    }
  }
  close(): void {
    void this.client.then((client) => client.socket.terminate());
  }
}
