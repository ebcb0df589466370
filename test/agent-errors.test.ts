import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";

const SERVER_ENTRY = fileURLToPath(new URL("../orchestrator/dist/server.js", import.meta.url));

/** Failures that say what to change, through real kernels. */
describe("errors an agent can fix by itself", () => {
  let orchestrator: TestOrchestrator;
  let session: SessionInfo;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_DEFAULT_EXEC_TIMEOUT_MS: "800", TETHER_MAX_EXEC_TIMEOUT_MS: "1500", TETHER_INTERRUPT_GRACE_MS: "2000" });
    session = await orchestrator.alice.createSession();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("input() without stdin fails at once and names the `stdin` field", async () => {
    const startedAt = Date.now();
    // An explicit timeout: this orchestrator's default (800 ms) is for the timeout test, too short for a loaded machine.
    const res = await orchestrator.alice.execute(session.id, { code: "name = input('name? ')", timeoutMs: 30_000 });
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(res.status).toBe("error");
    expect(res.failure?.code).toBe(ErrorCodes.EXEC_STDIN_EXHAUSTED);
    expect(res.failure?.message).toContain("the `stdin` field");
    expect(res.failure?.message).toContain('"stdin": ["42"]');
  });

  it("a timeout states the limit that applied: the requested timeoutMs, the default, or the cap", async () => {
    const requested = await orchestrator.alice.execute(session.id, { code: "import time\ntime.sleep(5)", timeoutMs: 400 });
    expect(requested.status).toBe("timeout");
    expect(requested.failure?.message).toContain("timeout of 400 ms");
    expect(requested.failure?.message).toContain("the requested timeoutMs = 400 ms");

    const byDefault = await orchestrator.alice.execute(session.id, { code: "import time\ntime.sleep(5)" });
    expect(byDefault.failure?.message).toContain("TETHER_DEFAULT_EXEC_TIMEOUT_MS = 800 ms");
    expect(byDefault.failure?.message).toContain("pass timeoutMs (up to TETHER_MAX_EXEC_TIMEOUT_MS = 1500 ms)");

    const capped = await orchestrator.alice.execute(session.id, { code: "import time\ntime.sleep(5)", timeoutMs: 60_000 });
    expect(capped.failure?.code).toBe(ErrorCodes.EXEC_TIMEOUT);
    expect(capped.failure?.message).toContain("timeout of 1500 ms");
    expect(capped.failure?.message).toContain("requested timeoutMs = 60000 ms was capped at TETHER_MAX_EXEC_TIMEOUT_MS = 1500 ms");
  });
});

describe("starting on a port that is taken", () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "tether-port-"));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("prints one line naming TETHER_PORT, no stack trace, and exits 1", async () => {
    const blocker = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    try {
      const { port } = blocker.address() as AddressInfo;
      const child = spawn(process.execPath, [SERVER_ENTRY], {
        env: {
          PATH: process.env.PATH ?? "",
          TETHER_PORT: String(port),
          TETHER_HOST: "127.0.0.1",
          TETHER_API_KEYS: "t:port-test-key",
          TETHER_DATA_DIR: dataDir,
          TETHER_LOG_LEVEL: "silent",
          ...(process.env.TETHER_PYTHON ? { TETHER_PYTHON: process.env.TETHER_PYTHON } : {}),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const [code] = await once(child, "exit");
      expect(code).toBe(1);
      const lines = stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`127.0.0.1:${port} is already in use`);
      expect(lines[0]).toContain("TETHER_PORT");
      expect(stderr).not.toMatch(/^\s+at /m);
    } finally {
      blocker.close();
    }
  });
});
