import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, startOrchestrator, type RunningOrchestrator, type OrchestratorConfig, type StartOptions } from "@tether/orchestrator";
import { describeProcesses, killProcesses, processesUsingDirectory, waitUntilNoProcesses } from "./processes.js";
import { RestClient } from "./rest.js";

/** API keys of the two tenants every test orchestrator knows. */
export const KEYS = { alice: "key-alice-0123456789", bob: "key-bob-9876543210" } as const;

export interface TestOrchestrator {
  /** http://127.0.0.1:<port> */
  url: string;
  keys: typeof KEYS;
  dataDir: string;
  /** The in-process app, for tests that look inside (a session's event log). */
  app: RunningOrchestrator["app"];
  /** REST clients for each tenant. */
  alice: RestClient;
  bob: RestClient;
  /** Closes the orchestrator, checks nothing it started is left running, removes the data dir. */
  close(): Promise<void>;
}

/** How long close() gives workers, Jupyter servers and kernels to go away. */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Starts a real orchestrator in this process on a free port, with a fresh
 * data dir. Workers it launches are real child processes with real kernels.
 * `overrides` are TETHER_* env values layered over the test defaults;
 * `startOptions` may replace the launcher (given the loaded config).
 */
export async function startTestOrchestrator(
  overrides: Record<string, string> = {},
  startOptions?: (config: OrchestratorConfig) => StartOptions,
): Promise<TestOrchestrator> {
  // realpath: kernels report their cwd resolved, and /tmp may be a symlink.
  const dataDir = await realpath(await mkdtemp(join(tmpdir(), "tether-it-")));
  const env: Record<string, string | undefined> = {
    TETHER_PORT: "0",
    TETHER_HOST: "127.0.0.1",
    TETHER_API_KEYS: `alice:${KEYS.alice},bob:${KEYS.bob}`,
    TETHER_DATA_DIR: dataDir,
    // TETHER_TEST_LOG_LEVEL=warn (or debug) shows the orchestrators' logs when a run needs explaining.
    TETHER_LOG_LEVEL: process.env.TETHER_TEST_LOG_LEVEL ?? "silent",
    // Sandboxed workers get an allowlisted environment: this lets the run marker through, so the
    // global teardown can still find any process a test left behind (see global-setup.ts).
    TETHER_SANDBOX_PASS_ENV: "TETHER_TEST_RUN_ID",
    ...(process.env.TETHER_PYTHON ? { TETHER_PYTHON: process.env.TETHER_PYTHON } : {}),
    ...overrides,
  };
  let server: Awaited<ReturnType<typeof startOrchestrator>>;
  try {
    const config = loadConfig(env);
    server = await startOrchestrator(config, startOptions?.(config));
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  let closed = false;
  return {
    url: server.url,
    keys: KEYS,
    dataDir,
    app: server.app,
    alice: new RestClient(server.url, KEYS.alice),
    bob: new RestClient(server.url, KEYS.bob),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await server.close();
        const leftovers = await waitUntilNoProcesses(() => processesUsingDirectory(dataDir), CLEANUP_TIMEOUT_MS);
        if (leftovers.length > 0) {
          killProcesses(leftovers);
          throw new Error(
            `The orchestrator closed but ${leftovers.length} process(es) it started were still running ` +
              `${CLEANUP_TIMEOUT_MS} ms later (killed now):\n${describeProcesses(leftovers)}`,
          );
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
