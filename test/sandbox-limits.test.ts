import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type ExecuteResponse, type SessionInfo } from "@tether/shared";
import { probe, waitForSession } from "./helpers/kernel-probe.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { KERNEL_PID_CODE, describeProcesses, hostPidOf, isAlive, processesWithEnvMarker, waitForExit, waitUntilNoProcesses } from "./helpers/processes.js";
import { StreamClient } from "./helpers/ws.js";

/**
 * The sandbox's resource limits (memory, processes, CPU time) and its
 * lifecycle, through the real stack; isolation is in sandbox.test.ts.
 */

const MEMORY_MB = 768;
const MAX_PROCESSES = 64;

describe("the sandbox's memory and process limits", () => {
  let orchestrator: TestOrchestrator;
  let a: SessionInfo;
  let b: SessionInfo;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SANDBOX_MEMORY_MB: String(MEMORY_MB), TETHER_SANDBOX_MAX_PROCESSES: String(MAX_PROCESSES) });
    [a, b] = await Promise.all([orchestrator.alice.createSession(), orchestrator.alice.createSession()]);
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("kills a kernel that goes over the memory limit with a kernel_died reason naming the limit, and the session carries on", async () => {
    const stream = await StreamClient.open(orchestrator.url, a.id, orchestrator.keys.alice);
    try {
      await stream.run("before", "kept = 'state before the kill'");
      // Under the per-process backstop (2x the limit), over the session's limit: the memory watch kills it.
      const trace = await stream.run("hog", `hog = bytearray(${MEMORY_MB + 512} * 1024 * 1024)\nprint('survived')`);
      const died = trace.ofType("kernel_died");
      expect(died).toHaveLength(1);
      expect(died[0]!.reason).toMatch(new RegExp(`^the kernel was killed: the session's processes used \\d+ MiB, over its memory limit of ${MEMORY_MB} MiB \\(TETHER_SANDBOX_MEMORY_MB\\)$`));
      expect(trace.text("stdout")).toBe("");
      expect(trace.done).toMatchObject({ status: "kernel_died", kernelRestarted: true, stateLost: true, failure: { code: ErrorCodes.KERNEL_DIED } });
      expect(trace.done.failure?.message).toContain(`memory limit of ${MEMORY_MB} MiB`);
      const after = await stream.run("after", "print('kept' in globals(), 6 * 7)");
      expect(after.done.status).toBe("ok");
      expect(after.text("stdout")).toBe("False 42\n");
    } finally {
      await stream.close();
    }
  });

  it("refuses one allocation larger than the per-process backstop with MemoryError, and the kernel keeps its state", async () => {
    await orchestrator.alice.execute(b.id, { code: "kept = 41" });
    const res: ExecuteResponse = await orchestrator.alice.execute(b.id, { code: `x = bytearray(${4 * MEMORY_MB} * 1024 * 1024)` });
    expect(res).toMatchObject({ status: "error", kernelRestarted: false, error: { name: "MemoryError" } });
    expect((await orchestrator.alice.execute(b.id, { code: "print(kept + 1)" })).stdout).toBe("42\n");
  });

  it("stops a fork bomb at the process limit (bounded: at most 300 forks, all killed), and the kernel keeps working", async () => {
    const seen = await probe<{ forked: number; error: string; errno: number }>(
      orchestrator,
      b.id,
      [
        "import time",
        "children, error, code = [], '', 0",
        "for _ in range(300):",
        "    try:",
        "        pid = os.fork()",
        "    except OSError as e:",
        "        error, code = type(e).__name__, e.errno",
        "        break",
        "    if pid == 0:",
        "        time.sleep(30)",
        "        os._exit(0)",
        "    children.append(pid)",
        "for pid in children:",
        "    os.kill(pid, 9)",
        "for pid in children:",
        "    os.waitpid(pid, 0)",
        "print(json.dumps({'forked': len(children), 'error': error, 'errno': code}))",
      ].join("\n"),
    );
    // The worker, Jupyter Server and the kernel already use ~30 of the 64 (threads count too).
    expect(seen.forked).toBeGreaterThan(0);
    expect(seen.forked).toBeLessThan(MAX_PROCESSES);
    expect(seen).toMatchObject({ error: "BlockingIOError", errno: 11 });
    expect((await orchestrator.alice.execute(b.id, { code: "print('still here')" })).stdout).toBe("still here\n");
  });

  it("brings up a new Jupyter Server when a limit kills the old one: the files stay, the variables are said lost", async () => {
    const session = await orchestrator.alice.createSession();
    await orchestrator.alice.execute(session.id, { code: "kept = 1\nopen('kept.txt', 'w').write('on disk')" });
    // Jupyter Server is the kernel's parent: its host pid is the kernel's PPid.
    const kernel = await hostPidOf((await orchestrator.alice.execute(session.id, { code: KERNEL_PID_CODE })).stdout);
    const server = Number(/^PPid:\s*(\d+)$/m.exec(await readFile(`/proc/${kernel}/status`, "utf8"))?.[1]);
    expect((await readFile(`/proc/${server}/cmdline`, "utf8")).replaceAll("\0", " ")).toContain("jupyter_server.serverapp");
    const execution = orchestrator.alice.execute(session.id, { code: "import time\ntime.sleep(60)" });
    await waitForSession(orchestrator, session.id, (info) => info.status === "busy");
    process.kill(server, "SIGKILL");
    expect(await execution).toMatchObject({ status: "kernel_died", stateLost: true });
    const after = await orchestrator.alice.execute(session.id, { code: "print('kept' in globals(), open('kept.txt').read())" });
    expect(after).toMatchObject({ status: "ok", stdout: "False on disk\n" });
    expect(await waitForExit(server, 10_000)).toBe(true);
    await orchestrator.alice.deleteSession(session.id);
  });

  it("leaves nothing behind when the session is deleted, not even a process that left its group and cleared its environment", async () => {
    const session = await orchestrator.alice.createSession();
    const kernel = await hostPidOf((await orchestrator.alice.execute(session.id, { code: KERNEL_PID_CODE })).stdout);
    const launchId = (await orchestrator.alice.execute(session.id, { code: "import os\nprint(os.environ['TETHER_LAUNCH_ID'])" })).stdout.trim();
    // A grandchild in its own session, exec'ed with an empty environment: no TETHER_LAUNCH_ID for the sweep to find.
    const escapee = await orchestrator.alice.execute(session.id, {
      code: [
        "import os, time",
        "r, w = os.pipe()",
        "if os.fork() == 0:",
        "    os.setsid()",
        "    if os.fork() == 0:",
        "        os.write(w, (os.readlink('/proc/self/ns/pid') + ' ' + str(os.getpid())).encode())",
        "        os.execve('/bin/sleep', ['sleep', '600'], {})",
        "    os._exit(0)",
        "print(os.read(r, 100).decode())",
      ].join("\n"),
    });
    const sleeper = await hostPidOf(escapee.stdout);
    expect(await isAlive(sleeper)).toBe(true);
    expect((await processesWithEnvMarker("TETHER_LAUNCH_ID", launchId)).map((p) => p.pid)).not.toContain(sleeper);

    await orchestrator.alice.deleteSession(session.id);
    expect(await waitForExit(kernel, 10_000)).toBe(true);
    expect(await waitForExit(sleeper, 10_000)).toBe(true);
    const left = await waitUntilNoProcesses(() => processesWithEnvMarker("TETHER_LAUNCH_ID", launchId), 10_000);
    expect(left, describeProcesses(left)).toEqual([]);
    expect(existsSync(`${orchestrator.dataDir}/run/${launchId}`)).toBe(false);
    expect(existsSync(`${orchestrator.dataDir}/workspaces/${launchId}`)).toBe(false);
  });
});

describe("the sandbox's CPU time limit", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_SANDBOX_CPU_SECONDS: "3" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("kills a kernel that spins past it with a kernel_died reason naming the limit", async () => {
    const session = await orchestrator.alice.createSession();
    const res = await orchestrator.alice.execute(session.id, { code: "while True:\n    pass", timeoutMs: 30_000 });
    expect(res).toMatchObject({ status: "kernel_died", kernelRestarted: true, failure: { code: ErrorCodes.KERNEL_DIED } });
    expect(res.failure?.message).toContain("the kernel was killed: it used more than its CPU time limit of 3 s (TETHER_SANDBOX_CPU_SECONDS");
    expect((await orchestrator.alice.execute(session.id, { code: "print('fresh budget')" })).stdout).toBe("fresh budget\n");
    await orchestrator.alice.deleteSession(session.id);
  });
});
