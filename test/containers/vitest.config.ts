import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Tests against a real Docker engine and the images built from this checkout
 * (`npm run test:containers` builds them first). Kept out of `npm test`: they
 * need root, dockerd and a few minutes of image builds.
 */
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/containers/**/*.test.ts"],
    pool: "forks",
    // Containers, kernels and compose on a 2-core machine: one file at a time.
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: ["test/global-setup.ts", "test/containers/global-setup.ts"],
  },
});
