import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DirectSpawner } from "./worker-spawn.js";

describe("DirectSpawner (TETHER_SANDBOX=off)", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tether-spawn-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("hands the join token over in a 0600 file, never in the environment, and removes it once the worker joined", async () => {
    const spawner = new DirectSpawner(["node", "/repo/worker/dist/main.js"], join(dir, "run"));
    const spawn = await spawner.prepare(
      { launchId: "lch_1", sessionId: null, orchestratorUrl: "ws://127.0.0.1:1/v1/workers/connect", joinToken: "the-token", env: { TETHER_LOG_LEVEL: "warn" } },
      join(dir, "ws"),
    );
    const file = spawn.env.TETHER_JOIN_TOKEN_FILE!;
    expect(file).toBe(join(dir, "run", "lch_1", "join-token"));
    expect(await readFile(file, "utf8")).toBe("the-token\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "run", "lch_1")).mode & 0o777).toBe(0o700);
    expect(spawn.env).not.toHaveProperty("TETHER_JOIN_TOKEN");
    expect(Object.values(spawn.env)).not.toContain("the-token");
    expect(spawn).toMatchObject({ command: "node", args: ["/repo/worker/dist/main.js"], cwd: join(dir, "ws") });
    expect(spawn.env).toMatchObject({ TETHER_LAUNCH_ID: "lch_1", TETHER_WORKSPACE: join(dir, "ws"), TETHER_LOG_LEVEL: "warn" });

    spawn.joined();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(existsSync(file)).toBe(false);
    await spawn.cleanUp();
    expect(existsSync(join(dir, "run", "lch_1"))).toBe(false);
  });
});
