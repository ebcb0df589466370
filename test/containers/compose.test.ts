import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerLabels } from "@tether/orchestrator";
import { RestClient } from "../helpers/rest.js";
import { containersWithLabel, dockerClient, freePort, PNG_MAGIC, run, testOrchestratorId, waitFor } from "./docker-helpers.js";

const composeFile = fileURLToPath(new URL("../../infra/docker-compose.yml", import.meta.url));
const KEY = "key-compose-0123456789";

/** Debian's docker-compose 1.29 (what CI installs); TETHER_COMPOSE="docker compose" tries Compose v2. */
const composeCommand = (process.env.TETHER_COMPOSE ?? "docker-compose").split(" ");

describe("docker compose deployment", () => {
  const docker = dockerClient();
  const project = `tether-${testOrchestratorId("compose")}`;
  const orchestratorId = testOrchestratorId("compose");
  let relayDir: string;
  let port: number;
  let env: NodeJS.ProcessEnv;
  let up = false;

  const compose = (...args: string[]) => {
    const [command = "docker-compose", ...prefix] = composeCommand;
    return run(command, [...prefix, "-p", project, "-f", composeFile, ...args], { env, timeoutMs: 150_000 });
  };

  beforeAll(async () => {
    relayDir = await mkdtemp(join(tmpdir(), "tether-relay-"));
    port = await freePort();
    env = {
      ...process.env,
      TETHER_PORT: String(port),
      TETHER_API_KEYS: `alice:${KEY}`,
      TETHER_DOCKER_RELAY_DIR: relayDir,
      TETHER_DOCKER_ORCHESTRATOR_ID: orchestratorId,
      TETHER_LOG_LEVEL: "warn",
    };
  });

  afterAll(async () => {
    if (up) await compose("down", "-v", "--timeout", "40");
    await rm(relayDir, { recursive: true, force: true });
  });

  it("runs the orchestrator and worker containers: up, a plot over REST on 127.0.0.1, and down leaves nothing of ours", async () => {
    const startedAt = Date.now();
    const started = await compose("up", "-d");
    up = true;
    expect(started.code, started.stderr).toBe(0);
    const client = new RestClient(`http://127.0.0.1:${port}`, KEY);
    await waitFor(
      "the orchestrator answers /healthz",
      () => client.request("GET", "/healthz", { auth: false }).then((r) => r.status, () => 0),
      (status) => status === 200,
      60_000,
    );
    const session = await client.createSession();
    const plot = await client.execute(session.id, { code: "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2]); plt.show()" });
    console.log(`compose: up to first plot in ${Date.now() - startedAt} ms`);
    expect(plot.status).toBe("ok");
    expect(Buffer.from(String(plot.outputs[0]?.data["image/png"]), "base64").subarray(0, 8)).toEqual(PNG_MAGIC);

    const workers = await containersWithLabel(docker, DockerLabels.orchestrator, orchestratorId);
    expect(workers).toHaveLength(1);
    expect(workers[0]?.HostConfig.NetworkMode).toBe("none");
    expect(await readdir(relayDir)).toHaveLength(1);

    // down with the session still running: the orchestrator stops its worker container on the way out.
    const down = await compose("down", "-v", "--timeout", "40");
    up = false;
    expect(down.code, down.stderr).toBe(0);
    const projectLabel = `com.docker.compose.project=${project}`;
    expect(await docker.listContainers({ all: true, filters: { label: [projectLabel] } })).toEqual([]);
    expect(await containersWithLabel(docker, DockerLabels.orchestrator, orchestratorId)).toEqual([]);
    expect(await docker.listNetworks({ filters: { label: [projectLabel] } })).toEqual([]);
    expect((await docker.listVolumes({ filters: { label: [projectLabel] } })).Volumes ?? []).toEqual([]);
    expect(await readdir(relayDir)).toEqual([]);
  });
});
