import { configDefaults, defineConfig } from "vitest/config";

/**
 * Two projects: `unit` (no kernel, seconds: `npm run test:unit`) and
 * `integration` (real Jupyter kernels, real processes: `npm run test:integration`).
 * `npm test` runs both; `npm run test:containers` (a real Docker engine) has its own config.
 */
export default defineConfig({
  test: {
    // Integration tests start real kernels; two files at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ["test/global-setup.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["shared/src/**/*.test.ts", "orchestrator/src/**/*.test.ts", "worker/src/**/*.test.ts", "client/src/**/*.test.ts"],
          exclude: ["**/*.integration.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts", "worker/src/**/*.integration.test.ts"],
          // Real Docker engine tests: `npm run test:containers` (test/containers/vitest.config.ts); a real
          // browser: `npm run test:browser` (test/browser/vitest.config.ts).
          exclude: [...configDefaults.exclude, "test/containers/**", "test/browser/**"],
        },
      },
    ],
  },
});
