import { afterEach, describe, expect, it } from "vitest";
import { EventsExpiredError, Tether, type Session } from "@tether/client";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { ObservedArray } from "./helpers/signals.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";

const LINES = 5_000;
/** 5000 numbered lines in flushed batches of 100, 20 ms apart: a run of about 1.5 s to cut into. */
const PRINT_LINES = ["import sys, time", `for i in range(${LINES}):`, "    print(f'line {i}')", "    if i % 100 == 99:", "        sys.stdout.flush()", "        time.sleep(0.02)"].join("\n");

/**
 * The SDK through a TCP proxy that cuts its connections: the stream comes back
 * by itself and resumes with ?after=, so callbacks neither repeat nor skip.
 */
describe("the SDK across dropped connections", () => {
  let orchestrator: TestOrchestrator | undefined;
  let proxy: TcpProxy | undefined;
  let session: Session | undefined;

  afterEach(async () => {
    session?.close();
    await proxy?.close();
    await orchestrator?.close();
    orchestrator = proxy = session = undefined;
  });

  async function start(env: Record<string, string> = {}): Promise<{ orchestrator: TestOrchestrator; proxy: TcpProxy; tether: Tether }> {
    orchestrator = await startTestOrchestrator(env);
    proxy = await TcpProxy.start();
    proxy.upstreamPort = Number(new URL(orchestrator.url).port);
    const tether = new Tether({ baseUrl: `http://127.0.0.1:${proxy.port}`, apiKey: orchestrator.keys.alice, reconnect: { maxDelayMs: 500 } });
    return { orchestrator, proxy, tether };
  }

  it("fires every stdout callback exactly once and in order while the connection is cut twice mid-execution", { timeout: 90_000 }, async () => {
    const { proxy, tether } = await start();
    session = await tether.createSession();
    const opened = new ObservedArray<number>();
    session.on("connection", (state) => {
      if (state.kind === "open") opened.push(Date.now());
    });
    await opened.until((o) => o.length === 1);
    const cuts: { at: number; connections: number }[] = [];
    let received = "";
    const result = await session.execute(PRINT_LINES, {
      onStdout: (text) => {
        received += text;
        const lines = received.length - received.replaceAll("\n", "").length;
        if ((cuts.length === 0 && lines >= 1_500) || (cuts.length === 1 && lines >= 3_500)) cuts.push({ at: Date.now(), connections: proxy.cutAll() });
      },
    });
    const expected = Array.from({ length: LINES }, (_, i) => `line ${i}\n`).join("");
    expect(cuts).toHaveLength(2);
    expect(cuts.every((cut) => cut.connections > 0)).toBe(true);
    // A line repeated or skipped anywhere would break the equality.
    expect(received).toBe(expected);
    expect(result).toMatchObject({ status: "ok", stdout: expected });
    expect(opened).toHaveLength(3);
    const reconnectMs = cuts.map((cut, i) => (opened[i + 1] ?? Number.NaN) - cut.at);
    expect(reconnectMs.every((ms) => ms >= 0 && ms < 5_000)).toBe(true);
    console.log(`SDK stream reconnect after a cut: ${reconnectMs.join(" ms, ")} ms`);
  });

  it("reads the result from the execution's record and reports EventsExpired when the missed messages are gone (410)", { timeout: 90_000 }, async () => {
    // The smallest log the orchestrator allows (64 KiB): 200 KB of output while the client is away overflows it.
    const { orchestrator, proxy, tether } = await start({ TETHER_EVENT_LOG_MAX_BYTES: String(64 * 1024) });
    session = await tether.createSession();
    const expiredOnSession: EventsExpiredError[] = [];
    session.on("events_expired", (error) => expiredOnSession.push(error));
    const stdout = new ObservedArray<string>();
    const expiredOnExecution: EventsExpiredError[] = [];
    const code = [
      "import os, time",
      "from IPython.display import clear_output",
      "print('before', flush=True)",
      "while not os.path.exists('go'):",
      "    time.sleep(0.02)",
      "for i in range(200):",
      "    print('x' * 1000, flush=True)",
      // The record keeps what a notebook would show: small, so it outlives the log's byte budget.
      "clear_output()",
      "print('after', flush=True)",
    ].join("\n");
    const running = session.execute(code, { requestId: "gap-1", onStdout: (text) => stdout.push(text), onEventsExpired: (error) => expiredOnExecution.push(error) });
    await stdout.until((s) => s.includes("before\n"));
    proxy.refusing = true;
    proxy.cutAll();
    // Behind the client's back (directly, not through the proxy): let the code flood, and wait for the end.
    await orchestrator.alice.request("PUT", `/v1/sessions/${session.id}/files/go`, { body: "" });
    const ended = await orchestrator.alice.request("GET", `/v1/sessions/${session.id}/executions/gap-1?waitMs=30000`);
    expect(ended.json()).toMatchObject({ status: "ok" });
    proxy.refusing = false;

    const result = await running;
    expect(result).toMatchObject({ requestId: "gap-1", status: "ok", stdout: "after\n" });
    expect(expiredOnExecution).toHaveLength(1);
    expect(expiredOnExecution[0]).toBeInstanceOf(EventsExpiredError);
    expect(expiredOnExecution[0]?.code).toBe("TETHER_ERR_EVENTS_EXPIRED");
    expect(expiredOnSession).toHaveLength(1);
    // The stream follows the session live again afterwards.
    expect((await session.execute("print('still streaming')")).stdout).toBe("still streaming\n");
  });
});
