import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { StreamClient } from "./helpers/ws.js";

describe("stdin", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    session = await orchestrator.alice.createSession();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("answers input() from the stdin lines of a REST execute", async () => {
    const res = await orchestrator.alice.execute(session.id, { code: 'name = input("name? ")\nprint("hi", name)', stdin: ["Ada"] });
    expect(res.status).toBe("ok");
    expect(res.stdout).toContain("hi Ada\n");
  });

  it("answers several prompts in order", async () => {
    const res = await orchestrator.alice.execute(session.id, {
      code: 'a = input("a? ")\nb = input("b? ")\nprint(b, a)',
      stdin: ["first", "second"],
    });
    expect(res.status).toBe("ok");
    expect(res.stdout).toContain("second first\n");
  });

  it("fails input() at once when the request brings no stdin", async () => {
    const startedAt = Date.now();
    const res = await orchestrator.alice.execute(session.id, { code: 'input("anyone? ")', timeoutMs: 30_000 });
    expect(res.status).toBe("error");
    expect(res.error?.name).toContain("StdinNotImplementedError");
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it("ends an execution that prompts more often than it has lines, and the session keeps working", async () => {
    const startedAt = Date.now();
    const res = await orchestrator.alice.execute(session.id, {
      code: 'kept = "yes"\na = input("1? ")\nb = input("2? ")\nprint("unreachable")',
      stdin: ["only one"],
      timeoutMs: 30_000,
    });
    expect(res.status).toBe("error");
    expect(res.failure?.code).toBe(ErrorCodes.EXEC_STDIN_EXHAUSTED);
    expect(res.stdout).not.toContain("unreachable");
    expect(Date.now() - startedAt).toBeLessThan(15_000);

    const after = await orchestrator.alice.execute(session.id, { code: "print(kept, a)" });
    expect(after.status).toBe("ok");
    expect(after.stdout).toBe("yes only one\n");
  });

  it("relays input() to a websocket client as input_request and resumes with its input_reply", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      stream.send({ type: "execute", requestId: "ask", code: 'colour = input("colour? ")\nprint("got", colour)' });
      const request = await stream.nextMessage((m) => m.type === "input_request" && m.requestId === "ask");
      expect(request).toMatchObject({ type: "input_request", prompt: "colour? ", password: false });
      stream.send({ type: "input_reply", requestId: "ask", value: "teal" });
      const trace = await stream.collectUntilDone("ask");
      expect(trace.done.status).toBe("ok");
      expect(trace.text("stdout")).toContain("got teal\n");
    } finally {
      await stream.close();
    }
  });

  it("marks a getpass() prompt as a password request", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      stream.send({ type: "execute", requestId: "secret", code: 'import getpass\npw = getpass.getpass("password: ")\nprint(len(pw))' });
      const request = await stream.nextMessage((m) => m.type === "input_request" && m.requestId === "secret");
      expect(request).toMatchObject({ prompt: "password: ", password: true });
      stream.send({ type: "input_reply", requestId: "secret", value: "hunter2" });
      const trace = await stream.collectUntilDone("secret");
      expect(trace.done.status).toBe("ok");
      expect(trace.text("stdout")).toBe("7\n");
    } finally {
      await stream.close();
    }
  });

  it("refuses an input_reply for a request that is not waiting for input", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      await stream.nextMessage((m) => m.type === "hello");
      stream.send({ type: "input_reply", requestId: "nobody-asked", value: "x" });
      const error = await stream.nextMessage((m) => m.type === "protocol_error");
      expect(error).toMatchObject({ requestId: "nobody-asked" });
      expect([ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT, ErrorCodes.EXEC_UNKNOWN_REQUEST]).toContain(error.type === "protocol_error" ? error.code : "");
      const trace = await stream.run("after-reply", "print('fine')");
      expect(trace.done.status).toBe("ok");
    } finally {
      await stream.close();
    }
  });
});
