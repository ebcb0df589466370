import { afterEach, beforeEach } from "vitest";
import { describeProcesses, killProcesses, processesUsingDirectory, waitUntilNoProcesses } from "./processes.js";

/** A fake job platform (ARM, a Kubernetes API server) whose "jobs" are real worker processes under `rootDir`. */
export interface FakePlatform {
  readonly rootDir: string;
  close(): Promise<void>;
}

/**
 * Each test of the calling `describe` gets a fresh fake platform; after it,
 * the test's orchestrator (whatever `orchestrator()` returns then) and the
 * fake are closed, and a worker process still running under the fake's
 * directory fails the test (and is killed).
 */
export function useFakePlatform<F extends FakePlatform>(start: () => Promise<F>, orchestrator: () => { close(): Promise<void> } | undefined, what: string): { readonly fake: F } {
  let fake: F | undefined;
  beforeEach(async () => {
    fake = await start();
  });
  afterEach(async () => {
    const current = fake;
    if (!current) return;
    try {
      await orchestrator()?.close();
    } finally {
      await current.close();
    }
    const leftovers = await waitUntilNoProcesses(() => processesUsingDirectory(current.rootDir), 10_000);
    if (leftovers.length > 0) {
      killProcesses(leftovers);
      throw new Error(`Processes of ${what} outlived the test:\n${describeProcesses(leftovers)}`);
    }
  });
  return {
    get fake(): F {
      if (!fake) throw new Error("the fake platform starts in beforeEach");
      return fake;
    },
  };
}
