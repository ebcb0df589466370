import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { StreamClient } from "./helpers/ws.js";

describe("timeouts, interrupts, restarts and kernel death", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;
  const run = (code: string, timeoutMs?: number) =>
    orchestrator.alice.execute(session.id, { code, ...(timeoutMs === undefined ? {} : { timeoutMs }) });

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_INTERRUPT_GRACE_MS: "1000" });
    session = await orchestrator.alice.createSession();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("interrupts a busy loop at its timeout and keeps the kernel's state", async () => {
    await run('survivor = "still here"');
    const startedAt = Date.now();
    const res = await run("while True:\n    pass", 1500);
    expect(res.status).toBe("timeout");
    expect(res.kernelRestarted).toBe(false);
    expect(res.stateLost).toBe(false);
    expect(Date.now() - startedAt).toBeLessThan(10_000);

    const after = await run("print(survivor)");
    expect(after.status).toBe("ok");
    expect(after.stdout).toBe("still here\n");
  });

  it("restarts a kernel that ignores the interrupt, says state was lost, and runs the next execution", async () => {
    await run('doomed = "soon gone"');
    const startedAt = Date.now();
    const res = await run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", 1500);
    expect(res.status).toBe("timeout");
    expect(res.kernelRestarted).toBe(true);
    expect(res.stateLost).toBe(true);
    expect(Date.now() - startedAt).toBeLessThan(20_000);

    const after = await run("print(1 + 1)");
    expect(after.status).toBe("ok");
    expect(after.stdout).toBe("2\n");
    const gone = await run("doomed");
    expect(gone.status).toBe("error");
    expect(gone.error?.name).toBe("NameError");
  });

  it("reports a kernel that exits as kernel_died long before the timeout, with state lost, and the next execution runs on a fresh kernel", async () => {
    const before = await run('before_death = "set"');
    expect(before.status).toBe("ok");
    const startedAt = Date.now();
    const res = await run("import os\nos._exit(1)", 30_000);
    expect(res.status).toBe("kernel_died");
    // Death is an event (the kernel's status turns to restarting), not something to find out at the 30 s timeout.
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(res.stateLost).toBe(true);
    expect(res.kernelRestarted).toBe(true);

    const after = await run("print('alive again')");
    expect(after.status).toBe("ok");
    expect(after.stdout).toBe("alive again\n");
    const gone = await run("before_death");
    expect(gone.status).toBe("error");
    expect(gone.error?.name).toBe("NameError");
  });

  it("tells a websocket client the kernel died before the execution's done", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const startedAt = Date.now();
      const trace = await stream.run("die", "import os\nos._exit(3)", 30_000);
      expect(Date.now() - startedAt).toBeLessThan(15_000);
      const died = trace.events.findIndex((e) => e.type === "kernel_died");
      expect(died).toBeGreaterThanOrEqual(0);
      expect(died).toBeLessThan(trace.events.length - 1);
      expect(trace.events[died]).toMatchObject({ type: "kernel_died", requestId: "die", reason: expect.any(String) });
      expect(trace.done).toMatchObject({ status: "kernel_died", stateLost: true, kernelRestarted: true });

      const next = await stream.run("after-death", "print('ok')");
      expect(next.done.status).toBe("ok");
      expect(next.text("stdout")).toBe("ok\n");
    } finally {
      await stream.close();
    }
  });

  it("stops a long sleep with the interrupt endpoint, long before it would end", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const startedAt = Date.now();
      stream.send({ type: "execute", requestId: "nap", code: 'import time\nprint("napping", flush=True)\ntime.sleep(30)' });
      await stream.nextMessage((m) => m.type === "stream" && m.requestId === "nap");
      await orchestrator.alice.interrupt(session.id);
      const trace = await stream.collectUntilDone("nap");
      expect(trace.done.status).toBe("error");
      expect(trace.ofType("error")[0]?.name).toBe("KeyboardInterrupt");
      expect(trace.done.kernelRestarted).toBe(false);
      expect(Date.now() - startedAt).toBeLessThan(10_000);
    } finally {
      await stream.close();
    }
  });

  it("stops a long sleep with an interrupt message on the websocket", async () => {
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const startedAt = Date.now();
      stream.send({ type: "execute", requestId: "nap2", code: 'import time\nprint("napping", flush=True)\ntime.sleep(30)' });
      await stream.nextMessage((m) => m.type === "stream" && m.requestId === "nap2");
      stream.send({ type: "interrupt" });
      const trace = await stream.collectUntilDone("nap2");
      expect(trace.done.status).toBe("error");
      expect(trace.ofType("error")[0]?.name).toBe("KeyboardInterrupt");
      expect(Date.now() - startedAt).toBeLessThan(10_000);
    } finally {
      await stream.close();
    }
  });

  it("answers the interrupt endpoint with ok when nothing is running", async () => {
    const res = await orchestrator.alice.request("POST", `/v1/sessions/${session.id}/interrupt`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    const after = await run("print('unaffected')");
    expect(after.stdout).toBe("unaffected\n");
  });

  it("forgets every variable when the session is restarted", async () => {
    await run("remembered = 5");
    const res = await orchestrator.alice.request("POST", `/v1/sessions/${session.id}/restart`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ ok: true });
    const after = await run("remembered");
    expect(after.status).toBe("error");
    expect(after.error?.name).toBe("NameError");
    const fresh = await run("print('fresh')");
    expect(fresh.stdout).toBe("fresh\n");
  });
});
