import { request as httpRequest, type IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { StreamClient } from "./helpers/ws.js";

/**
 * Nothing lost, nothing hung (reliability issue, items 1, 2, 3, 6): a client
 * that stops reading, kernel messages over the link's frame limit, a Jupyter
 * Server that dies, a download whose file shrinks.
 */
describe("big outputs, slow clients and dying servers", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SLOW_CLIENT_TIMEOUT_MS: "3000" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("disconnects a websocket client that stops reading (1013) instead of declaring the worker lost; state and files survive", { timeout: 120_000 }, async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      expect((await alice.execute(session.id, { code: "kept = 41" })).status).toBe("ok");
      const stalled = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
      const closed = stalled.closed();
      // Read nothing more: the orchestrator's sends to this client back up.
      const tcp = Reflect.get(stalled.socket, "_socket") as { pause(): void };
      tcp.pause();
      expect((await alice.putFile(session.id, "notes.txt", "uploaded before the flood")).status).toBe(200);
      const flood = await alice.execute(session.id, { code: 'line = "z" * (1024 * 1024 - 1)\nfor i in range(50):\n    print(line, flush=True)', timeoutMs: 10_000 });
      // The client was dropped, the worker was not: whatever the flood's own status, the session goes on.
      expect(flood.status).not.toBe("worker_lost");
      expect(flood.failure?.code).not.toBe(ErrorCodes.WORKER_LOST);
      expect(flood.stdout.length).toBeGreaterThan(0);
      const after = await alice.execute(session.id, { code: "print(kept + 1)\nprint(open('notes.txt').read())" });
      expect(after).toMatchObject({ status: "ok", stdout: "42\nuploaded before the flood\n", resumed: false, stateLost: false });
      (Reflect.get(stalled.socket, "_socket") as { resume(): void }).resume();
      expect((await closed).code).toBe(1013);
    } finally {
      await alice.deleteSession(session.id);
    }
  });

  it("delivers a 70 MB print whole over the websocket, in pieces, and keeps the kernel's state", { timeout: 120_000 }, async () => {
    const session = await orchestrator.alice.createSession();
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      await stream.run("set", "x = 7");
      const big = await stream.run("big", 'print("z" * 70_000_000)', 60_000);
      expect(big.done.status).toBe("ok");
      const pieces = big.ofType("stream");
      expect(pieces.length).toBeGreaterThan(10);
      expect(pieces.reduce((sum, piece) => sum + piece.text.length, 0)).toBe(70_000_001);
      const after = await stream.run("after", "print(x)");
      expect(after.text("stdout")).toBe("7\n");
      expect(after.done).toMatchObject({ status: "ok", stateLost: false });
    } finally {
      await stream.close();
      await orchestrator.alice.deleteSession(session.id);
    }
  });

  it("replaces a 70 MB display with a notice carrying OUTPUT_TOO_LARGE, and answers 100 unflushed 1 MiB prints (one batched message) with their output", { timeout: 120_000 }, async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      await alice.execute(session.id, { code: "x = 7" });
      const display = await alice.execute(session.id, { code: 'from IPython.display import HTML, display\ndisplay(HTML("<p>" + "z" * 70_000_000 + "</p>"))' });
      expect(display.status).toBe("ok");
      expect(display.outputs).toHaveLength(1);
      expect(display.outputs[0]?.metadata).toMatchObject({ tether: { code: ErrorCodes.OUTPUT_TOO_LARGE } });
      expect(String(display.outputs[0]?.data["text/plain"])).toMatch(/was dropped/);
      const batched = await alice.execute(session.id, { code: 'line = "y" * (1024 * 1024)\nfor i in range(100):\n    print(line)', timeoutMs: 60_000 });
      expect(batched).toMatchObject({ status: "ok", truncated: true });
      expect(batched.stdout.length).toBe(1024 * 1024);
      expect((await alice.execute(session.id, { code: "print(x)" })).stdout).toBe("7\n");
    } finally {
      await alice.deleteSession(session.id);
    }
  });

  it("reports a Jupyter Server killed under the kernel as kernel_died, brings up a new one, and keeps the files", { timeout: 120_000 }, async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      await alice.execute(session.id, { code: "open('kept.txt', 'w').write('still here')\nx = 1" });
      const killed = await alice.execute(session.id, { code: "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(30)" });
      expect(killed).toMatchObject({ status: "kernel_died", stateLost: true, failure: { code: ErrorCodes.KERNEL_DIED } });
      expect(killed.failure?.message).toMatch(/Jupyter Server/);
      const after = await alice.execute(session.id, { code: "print(open('kept.txt').read())\nprint('x' in globals())" });
      expect(after).toMatchObject({ status: "ok", stdout: "still here\nFalse\n" });
      await alice.restart(session.id);
      expect((await alice.execute(session.id, { code: "print(6 * 7)" })).stdout).toBe("42\n");
    } finally {
      await alice.deleteSession(session.id);
    }
  });

  it("drops the connection at once when a file shrinks while it is being downloaded", { timeout: 60_000 }, async () => {
    const { alice } = orchestrator;
    const session = await alice.createSession();
    try {
      await alice.execute(session.id, { code: "open('big.bin', 'wb').write(b'x' * (40 * 1024 * 1024))" });
      const url = new URL(`/v1/sessions/${session.id}/files/big.bin`, orchestrator.url);
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpRequest(url, { headers: { authorization: `Bearer ${orchestrator.keys.alice}` } }, resolve);
        req.on("error", reject);
        req.end();
      });
      expect(response.headers["content-length"]).toBe(String(40 * 1024 * 1024));
      response.pause();
      await alice.execute(session.id, { code: "open('big.bin', 'r+b').truncate(1000)" });
      const startedAt = Date.now();
      let received = 0;
      const outcome = await new Promise<string>((resolve) => {
        response.on("data", (chunk: Buffer) => (received += chunk.byteLength));
        response.on("end", () => resolve("end"));
        response.on("aborted", () => resolve("aborted"));
        response.on("error", () => resolve("error"));
        response.on("close", () => resolve("close"));
        response.resume();
      });
      // Not a clean end of 40 MiB: the client learns at once that it got less.
      expect(received).toBeLessThan(40 * 1024 * 1024);
      expect(outcome).not.toBe("end");
      expect(Date.now() - startedAt).toBeLessThan(10_000);
    } finally {
      await alice.deleteSession(session.id);
    }
  });
});
