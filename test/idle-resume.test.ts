import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { KERNEL_PID_CODE, describeProcesses, hostPidOf, processesWithEnvMarker, waitUntilNoProcesses } from "./helpers/processes.js";
import { expectStatus } from "./helpers/rest.js";
import { StreamClient } from "./helpers/ws.js";

/** The launch id every process of a kernel's launch carries in its environment. */
async function launchIdOfKernel(pid: number): Promise<string> {
  const environ = (await readFile(`/proc/${pid}/environ`, "utf8")).split("\u0000");
  const entry = environ.find((e) => e.startsWith("TETHER_LAUNCH_ID="));
  if (!entry) throw new Error(`Process ${pid} has no TETHER_LAUNCH_ID.`);
  return entry.slice("TETHER_LAUNCH_ID=".length);
}

describe("scale to zero and resume", () => {
  let orchestrator: TestOrchestrator;

  const create = async (idleTimeoutS: number): Promise<SessionInfo> =>
    expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: { idleTimeoutS } }), 201, "POST /v1/sessions");

  /** Waits for the session_status event on the session's stream, then reads the session. */
  async function waitForStatus(id: string, status: SessionInfo["status"], timeoutMs = 30_000): Promise<SessionInfo> {
    const stream = await StreamClient.open(orchestrator.url, id, orchestrator.keys.alice);
    try {
      const hello = await stream.nextMessage((m) => m.type === "hello");
      if (!(hello.type === "hello" && hello.status === status && hello.phase === status)) {
        await stream.nextMessage((m) => m.type === "session_status" && m.status === status && m.phase === status, timeoutMs);
      }
    } finally {
      await stream.close();
    }
    return orchestrator.alice.getSession(id);
  }

  async function kernelLaunchId(sessionId: string): Promise<string> {
    const res = await orchestrator.alice.execute(sessionId, { code: KERNEL_PID_CODE });
    return launchIdOfKernel(await hostPidOf(res.stdout));
  }

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_IDLE_TIMEOUT_S: "1" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("stops an idle session, leaving no process behind, and resumes it on the next execute with its files but not its variables", async () => {
    const session = await create(1);
    const wrote = await orchestrator.alice.execute(session.id, {
      code: "counter = 41\nimport os\nos.makedirs('data', exist_ok=True)\nopen('data/notes.txt', 'w').write('kept across the stop')",
    });
    expect(wrote.status).toBe("ok");
    const launchId = await kernelLaunchId(session.id);

    const stopped = await waitForStatus(session.id, "stopped");
    expect(stopped.stopReason).toMatchObject({ kind: "idle_timeout" });
    expect(stopped.snapshot).toMatchObject({ files: 1 });
    const left = await waitUntilNoProcesses(() => processesWithEnvMarker("TETHER_LAUNCH_ID", launchId), 10_000);
    expect(left, `still running for the stopped session:\n${describeProcesses(left)}`).toEqual([]);

    const resumed = await orchestrator.alice.execute(session.id, { code: "print(open('data/notes.txt').read())\nprint('counter' in globals())" });
    expect(resumed).toMatchObject({ status: "ok", resumed: true, stateLost: true, stdout: "kept across the stop\nFalse\n" });
    expect(await kernelLaunchId(session.id)).not.toBe(launchId);
    const next = await orchestrator.alice.execute(session.id, { code: "print('steady')" });
    expect(next).toMatchObject({ status: "ok", resumed: false, stateLost: false });
    expect(await orchestrator.alice.getSession(session.id)).toMatchObject({ status: "ready", phase: "ready" });
    await orchestrator.alice.deleteSession(session.id);
  });

  it("keeps the websocket open across the stop, and sends session_resumed before the resuming execution's output", async () => {
    const session = await create(1);
    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      const wrote = await stream.run("write", "greeting = 'hi'\nopen('ws.txt', 'w').write('from the websocket')");
      expect(wrote.done.status).toBe("ok");
      await stream.nextMessage((m) => m.type === "session_status" && m.phase === "stopping");
      const stopped = await stream.nextMessage((m) => m.type === "session_status" && m.phase === "stopped");
      expect(stopped).toMatchObject({ status: "stopped", stopReason: { kind: "idle_timeout" } });

      const trace = await stream.run("read", "print(open('ws.txt').read())\nprint('greeting' in globals())");
      const resumedAt = trace.events.findIndex((e) => e.type === "session_resumed");
      const firstOutput = trace.events.findIndex((e) => e.type === "stream");
      // Every message after hello carries the session's seq (durable executions); the rest is exact.
      expect(trace.events[resumedAt]).toEqual({ seq: expect.any(Number), type: "session_resumed", requestId: "read", stateLost: true, restoredFiles: 1 });
      expect(resumedAt).toBeLessThan(firstOutput);
      expect(trace.text("stdout")).toBe("from the websocket\nFalse\n");
      expect(trace.done).toMatchObject({ status: "ok", stateLost: true });
      // The resume's phases went by on the same socket.
      await stream.nextMessage((m) => m.type === "session_status" && m.phase === "ready");
    } finally {
      await stream.close();
    }
    await orchestrator.alice.deleteSession(session.id);
  });

  it("ends the running execution with worker_lost when the worker is killed, then resumes on the next execute", async () => {
    const session = await create(600);
    const launchId = await kernelLaunchId(session.id);
    // The worker itself, not the bwrap processes around it (whose command line names it too).
    const workers = (await processesWithEnvMarker("TETHER_LAUNCH_ID", launchId)).filter((p) => p.cmdline.includes("worker/dist/main.js") && !/\bbwrap\b/.test(p.cmdline));
    expect(workers).toHaveLength(1);

    const stream = await StreamClient.open(orchestrator.url, session.id, orchestrator.keys.alice);
    try {
      stream.send({ type: "execute", requestId: "nap", code: "import time\nprint('napping', flush=True)\ntime.sleep(60)" });
      await stream.nextMessage((m) => m.type === "stream" && m.requestId === "nap");
      process.kill(workers[0]!.pid, "SIGKILL");
      const trace = await stream.collectUntilDone("nap");
      expect(trace.done).toMatchObject({ status: "worker_lost", stateLost: true, failure: { code: ErrorCodes.WORKER_LOST } });
      await stream.nextMessage((m) => m.type === "session_status" && m.phase === "stopped");
    } finally {
      await stream.close();
    }
    const info = await orchestrator.alice.getSession(session.id);
    expect(info).toMatchObject({ status: "stopped", stopReason: { kind: "worker_lost" } });
    const left = await waitUntilNoProcesses(() => processesWithEnvMarker("TETHER_LAUNCH_ID", launchId), 10_000);
    expect(left, describeProcesses(left)).toEqual([]);

    const resumed = await orchestrator.alice.execute(session.id, { code: "print('back')" });
    expect(resumed).toMatchObject({ status: "ok", stdout: "back\n", resumed: true, stateLost: true });
    await orchestrator.alice.deleteSession(session.id);
  });
});
