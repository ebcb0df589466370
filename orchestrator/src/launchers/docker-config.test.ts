import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";

describe("TETHER_LAUNCHER=docker settings", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig({ TETHER_LAUNCHER: "docker", TETHER_DATA_DIR: "/srv/tether" });
    expect(config.launcher).toBe("docker");
    expect(config.docker).toEqual({
      socketPath: "/var/run/docker.sock",
      workerImage: "tether-worker:local",
      memoryBytes: 2 * 1024 ** 3,
      cpus: 1,
      pidsLimit: 512,
      workspaceBytes: 1024 ** 3,
      network: "none",
      relayDir: "/srv/tether/docker-relay",
      orchestratorId: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    // The same host and data dir give the same id: a restarted orchestrator finds its orphans.
    expect(loadConfig({ TETHER_LAUNCHER: "docker", TETHER_DATA_DIR: "/srv/tether" }).docker?.orchestratorId).toBe(config.docker?.orchestratorId);
    expect(loadConfig({ TETHER_LAUNCHER: "docker", TETHER_DATA_DIR: "/srv/other" }).docker?.orchestratorId).not.toBe(config.docker?.orchestratorId);
    expect(loadConfig({}).docker).toBeUndefined();
  });

  it("reads sizes, CPUs, limits and the network", () => {
    const docker = loadConfig({
      TETHER_LAUNCHER: "docker",
      TETHER_DOCKER_MEMORY: "512m",
      TETHER_DOCKER_WORKSPACE_SIZE: "1.5G",
      TETHER_DOCKER_CPUS: "0.5",
      TETHER_DOCKER_PIDS_LIMIT: "64",
      TETHER_DOCKER_NETWORK: "host",
      TETHER_DOCKER_ORCHESTRATOR_ID: "prod-1",
      TETHER_DOCKER_SOCKET: "/run/user/1000/docker.sock",
    }).docker;
    expect(docker).toMatchObject({ memoryBytes: 512 * 1024 ** 2, workspaceBytes: 1.5 * 1024 ** 3, cpus: 0.5, pidsLimit: 64, network: "host", orchestratorId: "prod-1", socketPath: "/run/user/1000/docker.sock" });
  });

  it("refuses bad values, naming the variable", () => {
    for (const [name, value] of [
      ["TETHER_DOCKER_MEMORY", "lots"],
      ["TETHER_DOCKER_MEMORY", "1k"],
      ["TETHER_DOCKER_CPUS", "0"],
      ["TETHER_DOCKER_PIDS_LIMIT", "2"],
      ["TETHER_DOCKER_NETWORK", "bad name"],
      ["TETHER_DOCKER_SOCKET", "docker.sock"],
      ["TETHER_DOCKER_ORCHESTRATOR_ID", "a=b"],
    ] as const) {
      expect(() => loadConfig({ TETHER_LAUNCHER: "docker", [name]: value }), `${name}=${value}`).toThrow(
        expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID, message: expect.stringContaining(name) }),
      );
    }
  });
});
