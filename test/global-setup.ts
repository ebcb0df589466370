import { existsSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  TETHER_PROCESS_PATTERN,
  describeProcesses,
  killProcesses,
  processesWithEnvMarker,
  waitUntilNoProcesses,
} from "./helpers/processes.js";

/** Env var every process of this test run inherits, so leaks can be found in /proc/<pid>/environ. */
export const RUN_MARKER = "TETHER_TEST_RUN_ID";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** How long teardown lets stragglers finish exiting before it calls them leaks. */
const LEAK_GRACE_MS = 10_000;

export default function setup(): () => Promise<void> {
  const missing = ["shared/dist/index.js", "worker/dist/main.js", "orchestrator/dist/index.js", "orchestrator/dist/server.js", "client/dist/index.js"].filter(
    (path) => !existsSync(join(repoRoot, path)),
  );
  if (missing.length > 0) {
    throw new Error(`The integration tests run the built packages, and ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing: run \`npm run build\` first.`);
  }

  const runId = `${Date.now()}-${randomUUID()}`;
  // Set before the test workers are forked, so they, the orchestrators they
  // start, the workers, Jupyter servers and kernels all inherit it.
  process.env[RUN_MARKER] = runId;

  return async () => {
    // The vitest processes carry the marker too (and so can helpers vite spawns):
    // only processes of a Tether run count as leaks.
    const tetherProcesses = async () => (await processesWithEnvMarker(RUN_MARKER, runId)).filter((p) => TETHER_PROCESS_PATTERN.test(p.cmdline));
    const leaks = await waitUntilNoProcesses(tetherProcesses, LEAK_GRACE_MS);
    if (leaks.length > 0) {
      killProcesses(leaks);
      // Vitest only logs a teardown error ("error during close"); the exit code must say it too.
      process.exitCode = 1;
      throw new Error(
        `${leaks.length} process(es) started by the integration tests were still running ${LEAK_GRACE_MS} ms after the last test (killed now):\n${describeProcesses(leaks)}`,
      );
    }
  };
}
