import { createServer, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import { DockerLauncher } from "./docker.js";

const logger = pino({ level: "silent" });

function dockerLauncher(socketPath: string): DockerLauncher {
  const config = loadConfig({ TETHER_LAUNCHER: "docker", TETHER_DOCKER_SOCKET: socketPath, TETHER_DATA_DIR: "/tmp/tether-unit-unused" }).docker;
  if (!config) throw new Error("no docker config");
  return new DockerLauncher({ config, logger });
}

describe("the docker launcher's health check (for /readyz)", () => {
  let dir: string | undefined;
  let engine: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (engine ? engine.close(() => resolve()) : resolve()));
    engine = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("is healthy when the engine answers its ping, and says why not when no engine answers", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tether-docker-health-"));
    const socketPath = path.join(dir, "docker.sock");
    const down = await dockerLauncher(socketPath).health();
    expect(down.ok).toBe(false);
    expect(down.ok ? "" : down.reason).toBe(`Could not ping the Docker engine: no Docker engine answers on ${socketPath}. [${ErrorCodes.LAUNCH_NOT_FOUND}]`);

    const pings: string[] = [];
    engine = createServer((request, response) => {
      pings.push(`${request.method} ${request.url}`);
      response.writeHead(200, { "content-type": "text/plain" }).end("OK");
    });
    await new Promise<void>((resolve) => engine?.listen(socketPath, resolve));
    expect(await dockerLauncher(socketPath).health()).toEqual({ ok: true, detail: `the Docker engine on ${socketPath} answers` });
    expect(pings).toEqual(["GET /_ping"]);
  });
});
