import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticationError, ConnectionError, InvalidRequestError, NotFoundError, PermissionError, Tether, type Session, type SessionStatusUpdate } from "@tether/client";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";

/** The SDK against a real orchestrator with real workers and kernels. */
describe("the TypeScript SDK", () => {
  let orchestrator: TestOrchestrator;
  let tether: Tether;
  let session: Session;
  const progress: SessionStatusUpdate[] = [];

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    tether = new Tether({ baseUrl: orchestrator.url, apiKey: orchestrator.keys.alice });
    session = await tether.createSession({ metadata: { chat: "sdk" }, onProgress: (update) => progress.push(update) });
  });

  afterAll(async () => {
    await session?.delete().catch(() => undefined);
    await orchestrator?.close();
  });

  it("creates a session and reports its start progress until it is ready", async () => {
    expect(progress.at(-1)).toMatchObject({ status: "ready", phase: "ready" });
    // A cold start takes about a second; the stream is open within milliseconds and sees the phases on the way.
    expect(progress[0]?.status).toBe("starting");
    expect(progress.map((p) => p.phase)).toContain("connected");
    expect(progress.map((p) => p.status).every((s) => s === "starting" || s === "ready")).toBe(true);
    expect((await session.info()).metadata).toEqual({ chat: "sdk" });
  });

  it("streams output to callbacks as it happens and resolves with the folded result, shaped like the REST answer", async () => {
    const events: string[] = [];
    const result = await session.execute("import sys\nfrom IPython.display import HTML, display\nprint('out', flush=True)\nprint('err', file=sys.stderr, flush=True)\ndisplay(HTML('<b>bold</b>'))\n6 * 7", {
      onStdout: (text) => events.push(`stdout:${text}`),
      onStderr: (text) => events.push(`stderr:${text}`),
      onDisplay: (display) => events.push(`display:${String(display.data["text/html"])}`),
      onResult: (value) => events.push(`result:${String(value.data["text/plain"])}`),
    });
    expect(events).toEqual(["stdout:out\n", "stderr:err\n", "display:<b>bold</b>", "result:42"]);
    expect(result).toMatchObject({ status: "ok", stdout: "out\n", stderr: "err\n", truncated: false, resumed: false, stateLost: false });
    expect(result.outputs.map((o) => o.type)).toEqual(["display_data", "execute_result"]);
    const rest = await orchestrator.alice.execute(session.id, { code: "6 * 7" });
    expect(Object.keys(result).sort()).toEqual(Object.keys(rest).sort());
  });

  it("reports a Python exception through onError and the result's error", async () => {
    let seen: string | undefined;
    const result = await session.execute("1 / 0", { onError: (error) => (seen = error.name) });
    expect(seen).toBe("ZeroDivisionError");
    expect(result).toMatchObject({ status: "error", error: { name: "ZeroDivisionError" } });
  });

  it("answers input() through onInput, and interrupts a prompt nobody can answer", async () => {
    const prompts: string[] = [];
    const answered = await session.execute("a = input('a? ')\nb = input('b? ')\nprint(int(a) + int(b))", {
      onInput: async ({ prompt }) => {
        prompts.push(prompt);
        return prompt === "a? " ? "2" : "3";
      },
    });
    expect(prompts).toEqual(["a? ", "b? "]);
    expect(answered).toMatchObject({ status: "ok", stdout: "5\n" });
    const unanswered = await session.execute("input('name? ')");
    expect(unanswered).toMatchObject({ status: "error", error: { name: "KeyboardInterrupt" } });
  });

  it("interrupts a running execution when its AbortSignal fires, and the session stays usable", async () => {
    const controller = new AbortController();
    const result = await session.execute("import time\nx = 7\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.05)", {
      signal: controller.signal,
      onStdout: () => controller.abort(),
    });
    expect(result).toMatchObject({ status: "error", error: { name: "KeyboardInterrupt" } });
    expect((await session.execute("print(x)")).stdout).toBe("7\n");
  });

  it("uploads, lists, downloads and removes workspace files", async () => {
    const entry = await session.files.upload("data/in.csv", "a,b\n1,2\n");
    expect(entry).toMatchObject({ path: "data/in.csv", size: 8 });
    await session.files.upload("bytes.bin", new Uint8Array([0, 1, 2, 255]));
    const result = await session.execute("print(open('data/in.csv').read().splitlines()[1])");
    expect(result.stdout).toBe("1,2\n");
    expect((await session.files.list()).files.map((f) => f.path).sort()).toEqual(["bytes.bin", "data/in.csv"]);
    expect([...(await session.files.download("bytes.bin"))]).toEqual([0, 1, 2, 255]);
    expect(await session.files.downloadText("data/in.csv")).toBe("a,b\n1,2\n");
    await session.files.remove("bytes.bin");
    await expect(session.files.download("bytes.bin")).rejects.toMatchObject({ name: "NotFoundError", code: "TETHER_ERR_FILE_NOT_FOUND", status: 404 });
    await expect(session.files.upload("../escape.txt", "x")).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it("turns transport failures into typed errors with the server's code and a hint", async () => {
    const wrongKey = new Tether({ baseUrl: orchestrator.url, apiKey: "not-a-key" });
    const unauthorized = await wrongKey.listSessions().catch((error: unknown) => error);
    expect(unauthorized).toBeInstanceOf(AuthenticationError);
    expect(unauthorized).toMatchObject({ code: "TETHER_ERR_AUTH_INVALID", status: 401, hint: expect.stringMatching(/\w/) });

    const missing = await tether.session("ses_does_not_exist").info().catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ code: "TETHER_ERR_SESSION_NOT_FOUND" });

    const missingStream = await tether.session("ses_does_not_exist").execute("print(1)").catch((error: unknown) => error);
    expect(missingStream).toBeInstanceOf(NotFoundError);

    const nowhere = new Tether({ baseUrl: "http://127.0.0.1:9", apiKey: "k" });
    const unreachable = await nowhere.listSessions().catch((error: unknown) => error);
    expect(unreachable).toBeInstanceOf(ConnectionError);
    expect(unreachable).toMatchObject({ code: "TETHER_ERR_CLIENT_NETWORK" });
  });

  it("mints a session token that executes and uploads in that session, and may not delete it", async () => {
    const minted = await session.createToken({ ttlS: 120 });
    const browser = new Tether({ baseUrl: orchestrator.url, token: minted.token }).session(session.id);
    try {
      await browser.files.upload("from-token.txt", "hi");
      expect((await browser.execute("print(open('from-token.txt').read())")).stdout).toBe("hi\n");
      const refused = await browser.delete().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(PermissionError);
      expect(refused).toMatchObject({ code: "TETHER_ERR_AUTH_SCOPE", status: 403 });
      const otherCreate = await new Tether({ baseUrl: orchestrator.url, token: minted.token }).createSession().catch((error: unknown) => error);
      expect(otherCreate).toBeInstanceOf(PermissionError);
    } finally {
      browser.close();
    }
  });

  it("re-attaches to an execution from a new handle with afterSeq and replays its output once", async () => {
    const start = session.lastSeq;
    expect(start).toBeGreaterThan(0);
    const first = await session.execute("for i in range(3):\n    print('line', i, flush=True)", { requestId: "reattach-1" });
    expect(first.stdout).toBe("line 0\nline 1\nline 2\n");
    const reloaded = tether.session(session.id, { afterSeq: start });
    try {
      const chunks: string[] = [];
      const again = await reloaded.attach("reattach-1", { onStdout: (text) => chunks.push(text) });
      expect(chunks.join("")).toBe("line 0\nline 1\nline 2\n");
      expect(again).toMatchObject({ status: "ok", stdout: "line 0\nline 1\nline 2\n" });
    } finally {
      reloaded.close();
    }
  });
});
