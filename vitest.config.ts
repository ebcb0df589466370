import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["shared/src/**/*.test.ts", "orchestrator/src/**/*.test.ts", "worker/src/**/*.test.ts", "test/**/*.test.ts"],
    // Real Docker engine tests: `npm run test:containers` (test/containers/vitest.config.ts).
    exclude: [...configDefaults.exclude, "test/containers/**"],
    // Integration tests start real kernels; two files at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ["test/global-setup.ts"],
  },
});
