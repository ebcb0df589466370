import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";

describe("the playground route", () => {
  let dir: string;
  let app: TetherApp | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tether-playground-"));
    await writeFile(path.join(dir, "index.html"), "<!doctype html><title>pg</title>");
    await writeFile(path.join(dir, "playground.js"), "console.log(1)");
    await writeFile(path.join(dir, "notes.txt"), "not served");
  });

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function appServing(playgroundDir: string): Promise<TetherApp> {
    app = buildApp(loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent", TETHER_DATA_DIR: "/tmp/tether-unit-unused", TETHER_PLAYGROUND_DIR: playgroundDir }));
    await app.ready();
    return app;
  }

  it("serves the built page without a credential, with its content type and no framing", async () => {
    const server = await appServing(dir);
    expect((await server.inject({ url: "/playground" })).headers.location).toBe("/playground/");
    const page = await server.inject({ url: "/playground/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.body).toContain("<title>pg</title>");
    const script = await server.inject({ url: "/playground/playground.js" });
    expect({ status: script.statusCode, type: script.headers["content-type"] }).toEqual({ status: 200, type: "text/javascript; charset=utf-8" });
  });

  it("serves only the built files of its own directory", async () => {
    const server = await appServing(dir);
    for (const url of ["/playground/notes.txt", "/playground/../package.json", "/playground/%2e%2e/package.json", "/playground/sub/index.html", "/playground/missing.js"]) {
      const res = await server.inject({ url });
      expect({ url, status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ url, status: 404, code: ErrorCodes.ROUTE_NOT_FOUND });
    }
  });

  it("answers 404 with a hint to build when the directory is empty or turned off", async () => {
    const missing = await (await appServing(path.join(dir, "absent"))).inject({ url: "/playground/" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<{ error: { hint: string } }>().error.hint).toContain("npm run build");
    await app?.close();
    const off = await (await appServing("")).inject({ url: "/playground/" });
    expect(off.statusCode).toBe(404);
  });
});
