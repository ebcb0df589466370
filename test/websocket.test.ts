import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, PROTOCOL_VERSION, WorkerCloseCodes, type OrchestratorMessage, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { JsonSocket, StreamClient, attemptUpgrade, streamUrl } from "./helpers/ws.js";

describe("client websocket", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;
  let stream: StreamClient | undefined;

  const open = async (options: { query?: boolean } = {}) => {
    stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice, options);
    return stream;
  };

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    session = await orchestrator.alice.createSession();
  });

  afterEach(async () => {
    await stream?.close();
    stream = undefined;
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("sends hello first, naming the session and protocol version", async () => {
    const client = await open();
    const first = await client.nextMessage();
    // Additive optional fields may follow; these four are the contract.
    expect(first).toMatchObject({ type: "hello", requestId: null, sessionId: session.id, protocolVersion: PROTOCOL_VERSION });
  });

  it("streams output, displays and the result of an execute, then done, all tagged with its requestId", async () => {
    const client = await open();
    const trace = await client.run(
      "r-1",
      'print("hi")\nfrom IPython.display import HTML, display\ndisplay(HTML("<i>x</i>"))\n6 * 7',
    );
    expect(trace.events.every((e) => e.requestId === "r-1")).toBe(true);
    expect(trace.text("stdout")).toBe("hi\n");
    expect(trace.ofType("display")[0]).toMatchObject({ data: { "text/html": "<i>x</i>" }, update: false });
    expect(trace.ofType("result")[0]).toMatchObject({ data: { "text/plain": "42" } });
    expect(trace.events.at(-1)?.type).toBe("done");
    expect(trace.done).toMatchObject({ status: "ok", kernelRestarted: false, stateLost: false });
    expect(trace.done.executionCount).toEqual(expect.any(Number));
    expect(trace.done.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("cancels a queued execution named by an interrupt without disturbing the one running", async () => {
    const client = await open();
    client.send({ type: "execute", requestId: "slow", code: "import time\ntime.sleep(1.5)\nprint('slow done')" });
    client.send({ type: "execute", requestId: "queued", code: "print('must not run')" });
    await client.nextMessage((m) => m.type === "status" && m.requestId === "queued");
    client.send({ type: "interrupt", requestId: "queued" });
    const cancelled = await client.collectUntilDone("queued");
    expect(cancelled.done).toMatchObject({ status: "cancelled", failure: { code: ErrorCodes.EXEC_CANCELLED } });
    expect(cancelled.text("stdout")).toBe("");
    const slow = await client.collectUntilDone("slow");
    expect(slow.done.status).toBe("ok");
    expect(slow.text("stdout")).toBe("slow done\n");
  });

  it("answers malformed JSON with a protocol_error and keeps executing on the same socket", async () => {
    const client = await open();
    client.send("{this is not json");
    const error = await client.nextMessage((m) => m.type === "protocol_error");
    expect(error).toMatchObject({ requestId: null, code: ErrorCodes.PROTOCOL_MALFORMED_JSON });
    const trace = await client.run("after-bad-json", "print('still works')");
    expect(trace.done.status).toBe("ok");
    expect(trace.text("stdout")).toBe("still works\n");
  });

  it("answers an unknown message type with TETHER_ERR_PROTOCOL_UNKNOWN_TYPE", async () => {
    const client = await open();
    client.send({ type: "teleport", requestId: "t-1" });
    const error = await client.nextMessage((m) => m.type === "protocol_error");
    expect(error).toMatchObject({ code: ErrorCodes.PROTOCOL_UNKNOWN_TYPE, requestId: "t-1" });
    expect((await client.run("after-unknown", "1")).done.status).toBe("ok");
  });

  it("answers an execute without code with TETHER_ERR_PROTOCOL_INVALID_MESSAGE", async () => {
    const client = await open();
    client.send({ type: "execute", requestId: "no-code" });
    const error = await client.nextMessage((m) => m.type === "protocol_error");
    expect(error).toMatchObject({ code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, requestId: "no-code" });
    expect((await client.run("after-invalid", "1")).done.status).toBe("ok");
  });

  it("refuses a frame over 1 MiB with TETHER_ERR_PROTOCOL_FRAME_TOO_LARGE and keeps the socket open", async () => {
    const client = await open();
    client.send({ type: "execute", requestId: "huge", code: `x = "${"a".repeat(1024 * 1024 + 100)}"` });
    const error = await client.nextMessage((m) => m.type === "protocol_error");
    expect(error).toMatchObject({ code: ErrorCodes.PROTOCOL_FRAME_TOO_LARGE });
    expect(client.isOpen).toBe(true);
    const trace = await client.run("after-huge", "print('small again')");
    expect(trace.done.status).toBe("ok");
    expect(trace.text("stdout")).toBe("small again\n");
  });

  it("refuses a second execute reusing the requestId of one still running", async () => {
    const client = await open();
    client.send({ type: "execute", requestId: "twin", code: 'import time\nprint("started", flush=True)\ntime.sleep(1)\nprint("first")' });
    await client.nextMessage((m) => m.type === "stream" && m.requestId === "twin");
    client.send({ type: "execute", requestId: "twin", code: 'print("second")' });
    const error = await client.nextMessage((m) => m.type === "protocol_error");
    expect(error).toMatchObject({ code: ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, requestId: "twin" });
    const trace = await client.collectUntilDone("twin");
    expect(trace.done.status).toBe("ok");
    expect(trace.text("stdout")).toBe("first\n");
    // Exactly one done for that id: nothing of the refused twin follows.
    const probe = await client.run("after-twin", "1");
    expect(probe.done.status).toBe("ok");
    expect(client.pending().filter((m) => m.requestId === "twin")).toEqual([]);
  });

  it("accepts the API key as a ?token= query parameter", async () => {
    const client = await open({ query: true });
    expect(await client.nextMessage()).toMatchObject({ type: "hello", sessionId: session.id });
    expect((await client.run("q-auth", "print('via query')")).text("stdout")).toBe("via query\n");
  });

  it("refuses a websocket with a wrong token or none", async () => {
    const wrong = await attemptUpgrade(streamUrl(orchestrator.url, session.id, "not-a-key"));
    expect(wrong.code).toBe(ErrorCodes.AUTH_INVALID);
    if (wrong.kind === "http") expect(wrong.status).toBe(401);
    else expect(wrong.sawHello).toBe(false);

    const none = await attemptUpgrade(streamUrl(orchestrator.url, session.id));
    expect(none.code).toBe(ErrorCodes.AUTH_MISSING);
    if (none.kind === "http") expect(none.status).toBe(401);
    else expect(none.sawHello).toBe(false);
  });

  it("refuses a websocket to another tenant's session as not found", async () => {
    const outcome = await attemptUpgrade(streamUrl(orchestrator.url, session.id), { authorization: `Bearer ${orchestrator.keys.bob}` });
    expect(outcome.code).toBe(ErrorCodes.SESSION_NOT_FOUND);
    if (outcome.kind === "http") expect(outcome.status).toBe(404);
    else expect(outcome.sawHello).toBe(false);
  });

  it("refuses a worker whose join token is wrong with join_refused and close code 4401", async () => {
    const gateway = new URL("/v1/workers/connect", orchestrator.url.replace(/^http/, "ws")).toString();
    const worker = await JsonSocket.connect<OrchestratorMessage>(gateway);
    try {
      worker.send({ type: "hello", protocolVersion: PROTOCOL_VERSION, agentVersion: "test", token: "wrong", capabilities: [] });
      const refusal = await worker.nextMessage();
      expect(refusal).toMatchObject({ type: "join_refused", code: ErrorCodes.WORKER_TOKEN_INVALID });
      expect((await worker.closed()).code).toBe(WorkerCloseCodes.joinRefused);
    } finally {
      await worker.close();
    }
  });
});
