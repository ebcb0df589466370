import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, PROTOCOL_VERSION, WorkerCapabilities, type OrchestratorMessage, type ServerMessage } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";
import { JsonSocket, StreamClient } from "./helpers/ws.js";

/** Short, so a worker that stays away is declared lost after 3 s (3 intervals). */
const HEARTBEAT_INTERVAL_MS = 1000;
const LINES = 10_000;

/** Prints LINES numbered lines with small flushes and pauses, so the output takes ~1-2 s. */
const PRINT_LINES = [
  "import sys, time",
  `for i in range(${LINES}):`,
  "    print(f'line {i}')",
  "    if i % 100 == 99:",
  "        sys.stdout.flush()",
  "        time.sleep(0.012)",
].join("\n");

describe("a worker whose websocket drops", () => {
  let proxy: TcpProxy;
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    proxy = await TcpProxy.start();
    // Workers dial the proxy, which pipes to the orchestrator.
    orchestrator = await startTestOrchestrator({
      TETHER_PUBLIC_URL: `ws://127.0.0.1:${proxy.port}`,
      TETHER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
    });
    proxy.upstreamPort = Number(new URL(orchestrator.url).port);
  });

  afterAll(async () => {
    await orchestrator?.close();
    await proxy?.close();
  });

  /** Resolves once the client has seen stdout containing `marker` (without taking any message). */
  const seen = (client: StreamClient, marker: string): Promise<number> =>
    new Promise((resolve) => {
      let text = "";
      const listener = (raw: Buffer) => {
        const message = JSON.parse(raw.toString()) as ServerMessage;
        if (message.type !== "stream") return;
        text += message.text;
        if (text.includes(marker)) {
          client.socket.off("message", listener);
          resolve(Date.now());
        }
      };
      client.socket.on("message", listener);
    });

  it("reconnects mid-stream and delivers every one of 10,000 printed lines exactly once, in order", async () => {
    const session = await orchestrator.alice.createSession();
    const client = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const acceptedBefore = proxy.acceptedAt.length;
      const early = seen(client, "line 2000\n");
      const late = seen(client, "line 6500\n");
      client.send({ type: "execute", requestId: "lines", code: PRINT_LINES });
      const running = client.collectUntilDone("lines");

      await early;
      const firstCutAt = Date.now();
      expect(proxy.cutAll()).toBe(1);
      await late;
      // Cut again once the link is back: a second drop resumes like the first.
      await proxy.acceptedAt.until((accepted) => accepted.length > acceptedBefore && proxy.open > 0);
      expect(proxy.cutAll()).toBe(1);

      const trace = await running;
      expect(trace.done).toMatchObject({ status: "ok", kernelRestarted: false, stateLost: false });
      const lines = trace.text("stdout").split("\n");
      expect(lines.pop()).toBe("");
      expect(lines.length).toBe(LINES);
      const misplaced = lines.findIndex((line, index) => line !== `line ${index}`);
      expect(misplaced, `line ${misplaced} is '${lines[misplaced]}'`).toBe(-1);
      // The worker link's own seq never leaks to clients: what they see is the session's seq, strictly
      // increasing across both reconnects (a leaked link seq would start over or repeat after a resume).
      const seqs = trace.events.map((event) => ("seq" in event && typeof event.seq === "number" ? event.seq : NaN));
      expect(seqs.every((seq, index) => Number.isInteger(seq) && (index === 0 || seq > (seqs[index - 1] ?? 0)))).toBe(true);
      // Two drops, two reconnects through the proxy.
      expect(proxy.acceptedAt.length - acceptedBefore).toBe(2);
      const reconnectMs = proxy.acceptedAt[acceptedBefore]! - firstCutAt;
      expect(reconnectMs).toBeLessThan(3 * HEARTBEAT_INTERVAL_MS);

      // The session carries on as if nothing happened.
      const after = await client.run("after", "print('still here')");
      expect(after.done.status).toBe("ok");
      expect(after.text("stdout")).toBe("still here\n");
    } finally {
      await client.close();
      await orchestrator.alice.deleteSession(session.id);
    }
  });

  it("refuses a resume with a wrong or rotated token, and a hello with the spent join token", async () => {
    const downstreamBefore = proxy.sentToWorkers().length;
    const session = await orchestrator.alice.createSession();
    try {
      const told = proxy.sentToWorkers().slice(downstreamBefore);
      const welcome = /\{"type":"welcome","workerId":"(wrk_[0-9a-f]+)"[^}]*"resumeToken":"([A-Za-z0-9_-]+)"\}/.exec(told);
      expect(welcome, "the welcome frame seen through the proxy").not.toBeNull();
      const [, workerId, welcomeToken] = welcome!;

      // One drop and resume rotates the token.
      expect(proxy.cutAll()).toBe(1);
      const probe = await orchestrator.alice.execute(session.id, { code: "print('back')" });
      expect(probe).toMatchObject({ status: "ok", stdout: "back\n" });

      const gateway = `${orchestrator.url.replace(/^http/, "ws")}/v1/workers/connect`;
      const attempt = async (first: unknown): Promise<{ refusal: OrchestratorMessage; code: number }> => {
        const socket = await JsonSocket.connect<OrchestratorMessage>(gateway);
        socket.send(first);
        const refusal = await socket.nextMessage();
        return { refusal, code: (await socket.closed()).code };
      };
      const resume = (id: string, resumeToken: string) => ({ type: "resume", protocolVersion: PROTOCOL_VERSION, workerId: id, resumeToken, lastSeqReceived: 0 });

      expect(await attempt(resume(workerId!, "not-the-token"))).toMatchObject({ refusal: { type: "join_refused", code: ErrorCodes.WORKER_RESUME_REFUSED }, code: 4401 });
      expect(await attempt(resume(workerId!, welcomeToken!))).toMatchObject({ refusal: { code: ErrorCodes.WORKER_RESUME_REFUSED }, code: 4401 });
      expect(await attempt(resume("wrk_unknown", welcomeToken!))).toMatchObject({ refusal: { code: ErrorCodes.WORKER_RESUME_REFUSED }, code: 4401 });

      const joinToken = workerJoinToken(proxy);
      const hello = { type: "hello", protocolVersion: PROTOCOL_VERSION, agentVersion: "test", token: joinToken, capabilities: [WorkerCapabilities.resume] };
      expect(await attempt(hello)).toMatchObject({ refusal: { code: ErrorCodes.WORKER_TOKEN_REUSED }, code: 4401 });

      // None of that disturbed the real worker.
      expect(await orchestrator.alice.execute(session.id, { code: "print(2)" })).toMatchObject({ status: "ok", stdout: "2\n" });
    } finally {
      await orchestrator.alice.deleteSession(session.id);
    }
  });

  it("ends the in-flight execution with worker_lost when the worker cannot get back within the heartbeat deadline", async () => {
    const session = await orchestrator.alice.createSession();
    const client = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const started = seen(client, "started\n");
      client.send({ type: "execute", requestId: "stuck", code: "import time\nprint('started', flush=True)\ntime.sleep(60)" });
      await started;
      proxy.refusing = true;
      const cutAt = Date.now();
      expect(proxy.cutAll()).toBe(1);
      const trace = await client.collectUntilDone("stuck", 20_000);
      const lostAfterMs = Date.now() - cutAt;
      expect(trace.done).toMatchObject({ status: "worker_lost", failure: { code: ErrorCodes.WORKER_LOST } });
      expect(trace.done.failure?.message).toContain("did not reconnect");
      // Held for the deadline (3 intervals), not failed at the first drop.
      expect(lostAfterMs).toBeGreaterThanOrEqual(3 * HEARTBEAT_INTERVAL_MS - 100);
      expect(lostAfterMs).toBeLessThan(3 * HEARTBEAT_INTERVAL_MS + 5000);
    } finally {
      proxy.refusing = false;
      await client.close();
      await orchestrator.alice.deleteSession(session.id).catch(() => undefined);
    }
  });
});

/**
 * The join token the latest worker presented in its hello, read off the wire between it and the
 * orchestrator, as an attacker with the token would have it (the worker's environment no longer
 * holds it: it reads it from a file it then removes).
 */
function workerJoinToken(proxy: TcpProxy): string {
  for (const frame of proxy.firstFramesFromWorkers().reverse()) {
    const hello = JSON.parse(frame) as { type?: string; token?: string };
    if (hello.type === "hello" && hello.token) return hello.token;
  }
  throw new Error("No hello with a join token went through the proxy.");
}
