import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalProcessLauncher } from "./local-process.js";
import type { WorkerSpawner } from "./worker-spawn.js";

describe("LocalProcessLauncher", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tether-local-process-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // bwrap reads its arguments and the join token from extra pipes; one killed before it read them
  // broke the pipe, and with no listener that error was uncaught (vitest fails the run on one).
  it("survives a worker that exits without reading what its extra pipes were fed", async () => {
    const spawner: WorkerSpawner = {
      description: "test",
      prepare: async (_request, workspace) => ({
        command: "sh",
        args: ["-c", "exit 3"],
        env: {},
        cwd: workspace,
        extraPipes: 2,
        started: (child) => {
          for (const fd of [3, 4]) (child.stdio[fd] as Writable | null | undefined)?.end(Buffer.alloc(1024 * 1024, 1));
        },
        joined: () => undefined,
        cleanUp: async () => undefined,
      }),
    };
    const launcher = new LocalProcessLauncher({ spawner, workspacesDir: dir, logger: pino({ level: "silent" }) });
    const exits = [];
    for (let i = 0; i < 5; i++) {
      const handle = await launcher.launch({ launchId: `lch_${i}`, sessionId: null, orchestratorUrl: "ws://127.0.0.1:1/v1/workers/connect", joinToken: "t", env: {} });
      exits.push(await handle.exited);
    }
    expect(exits.map((exit) => exit.code)).toEqual([3, 3, 3, 3, 3]);
    // Let any late pipe error surface inside this test.
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
});
