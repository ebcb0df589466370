import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Browser tests: Debian's Chromium driven by playwright-core, against a real
 * orchestrator with real kernels (`npm run test:browser`, after the build).
 * Kept out of `npm test`: they need /usr/bin/chromium.
 */
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/browser/**/*.test.ts"],
    pool: "forks",
    // One Chromium, one orchestrator and its kernels at a time on a 2-core machine.
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ["test/global-setup.ts"],
  },
});
