import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { KEYS } from "./helpers/orchestrator.js";
import { KERNEL_PID_CODE, describeProcesses, hostPidOf, isAlive, killProcesses, processesWithEnvMarker } from "./helpers/processes.js";
import { RestClient } from "./helpers/rest.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const MARKER = "TETHER_SHUTDOWN_TEST_ID";

/** Resolves with the URL from the child's "listening on <url>" banner; rejects if it exits first. */
function waitForListening(child: ChildProcess, timeoutMs: number, log: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`The orchestrator did not report listening within ${timeoutMs} ms. Output:\n${log.join("\n")}`)), timeoutMs);
    const onLine = (line: string) => {
      log.push(line);
      const match = /listening on (http:\/\/[^\s"]+)/i.exec(line);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on("line", onLine);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`The orchestrator exited (code ${code}, signal ${signal}) before listening. Output:\n${log.join("\n")}`));
    });
  });
}

function waitForChildExit(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`The orchestrator had not exited ${timeoutMs} ms after SIGTERM.`)), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Starts `node orchestrator/dist/server.js` as its own process, marked so everything it starts can be found in /proc. */
async function startChildOrchestrator(extraEnv: Record<string, string> = {}) {
  const marker = randomUUID();
  const dataDir = await realpath(await mkdtemp(join(tmpdir(), "tether-shutdown-")));
  const log: string[] = [];
  const child = spawn(process.execPath, [join(repoRoot, "orchestrator/dist/server.js")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...extraEnv,
      [MARKER]: marker,
      TETHER_PORT: "0",
      TETHER_HOST: "127.0.0.1",
      TETHER_API_KEYS: `alice:${KEYS.alice}`,
      TETHER_DATA_DIR: dataDir,
      TETHER_LOG_LEVEL: "info",
      // Sandboxed workers get an allowlisted environment: let the markers through.
      TETHER_SANDBOX_PASS_ENV: `${MARKER},TETHER_TEST_RUN_ID`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const cleanUp = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    killProcesses(await processesWithEnvMarker(MARKER, marker));
    await rm(dataDir, { recursive: true, force: true });
  };
  return { child, marker, log, cleanUp };
}

describe("orchestrator shutdown", () => {
  it("stops every worker, Jupyter server and kernel it started when sent SIGTERM, then exits cleanly", async () => {
    const { child, marker, log, cleanUp } = await startChildOrchestrator();
    try {
      await runScenario();
    } catch (error) {
      // The orchestrator's own log says why a step failed.
      throw new Error(`${(error as Error).message}\n--- orchestrator output ---\n${log.slice(-60).join("\n")}`, { cause: error });
    } finally {
      await cleanUp();
    }

    async function runScenario(): Promise<void> {
      const url = await waitForListening(child, 30_000, log);
      const alice = new RestClient(url, KEYS.alice);
      const sessions = await Promise.all([alice.createSession(), alice.createSession()]);
      const kernelPids: number[] = [];
      for (const session of sessions) {
        const res = await alice.execute(session.id, { code: KERNEL_PID_CODE });
        kernelPids.push(await hostPidOf(res.stdout));
      }
      const running = await processesWithEnvMarker(MARKER, marker);
      // The orchestrator, and per session at least a worker, a Jupyter server and a kernel.
      expect(running.length).toBeGreaterThanOrEqual(1 + 3 * sessions.length);
      for (const pid of kernelPids) expect(running.map((p) => p.pid)).toContain(pid);

      child.kill("SIGTERM");
      const exit = await waitForChildExit(child, 30_000);
      expect(exit).toEqual({ code: 0, signal: null });

      const survivors = await processesWithEnvMarker(MARKER, marker);
      expect(survivors, `still running after the orchestrator exited:\n${describeProcesses(survivors)}`).toEqual([]);
      for (const pid of kernelPids) expect(await isAlive(pid)).toBe(false);
    }
  });

  it("keeps the orchestrator's secrets out of the kernel's environment", async () => {
    const { child, log, cleanUp } = await startChildOrchestrator({ PAYMENTS_API_KEY: "do-not-leak", SERVICE_SECRET: "do-not-leak" });
    try {
      const url = await waitForListening(child, 30_000, log);
      const alice = new RestClient(url, KEYS.alice);
      const session = await alice.createSession();
      const res = await alice.execute(session.id, {
        code: "import os\nprint(sorted(k for k, v in os.environ.items() if 'do-not-leak' in v or k in ('TETHER_API_KEYS', 'TETHER_JOIN_TOKEN')))\nprint(os.environ.get('PATH') is not None)",
      });
      expect(res.status).toBe("ok");
      expect(res.stdout).toBe("[]\nTrue\n");
    } finally {
      await cleanUp();
    }
  });
});
