import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerLabels } from "@tether/orchestrator";
import { ErrorCodes, type ExecuteResponse, type SessionInfo } from "@tether/shared";
import { expectStatus, RestClient, type ApiResponse } from "../helpers/rest.js";
import { containersWithLabel, dockerClient, freePort, run, sessionContainer, testOrchestratorId, waitFor } from "./docker-helpers.js";

const composeFile = fileURLToPath(new URL("../../infra/docker-compose.cluster.yml", import.meta.url));
const KEY = "key-compose-cluster-0123456789";
const REPLICAS = ["replica-1", "replica-2", "replica-3"] as const;
type ReplicaService = (typeof REPLICAS)[number];
/** TETHER_REDIS_PREFIX's default. */
const PREFIX = "tether:";
/** How long a stopped replica's session may take to answer again through the balancer. */
const FAILOVER_TIMEOUT_MS = 60_000;

/** Debian's docker-compose 1.29 (what CI installs); TETHER_COMPOSE="docker compose" tries Compose v2. */
const composeCommand = (process.env.TETHER_COMPOSE ?? "docker-compose").split(" ");

/**
 * infra/docker-compose.cluster.yml: Redis, three docker-launcher replicas and
 * the balancer on host networking. Workers reach their replica through its
 * relay socket, so stopping a replica scales its sessions to zero: the next
 * call resumes them elsewhere with their files and without their variables.
 */
describe("docker compose cluster", () => {
  const docker = dockerClient();
  const project = `tether-${testOrchestratorId("compose-cluster")}`;
  const orchestratorId = testOrchestratorId("cc");
  const replicaOrchestratorId = (service: ReplicaService) => `${orchestratorId}-${service.slice("replica-".length)}`;
  let relayDir: string;
  let env: NodeJS.ProcessEnv;
  let ports: { balancer: number; redis: number; replicas: Record<ReplicaService, number> };
  let up = false;
  /** Filled by the first test, used by the second. */
  const shared: { sessionId?: string; replicaIds?: Record<ReplicaService, string> } = {};

  const compose = (...args: string[]) => {
    const [command = "docker-compose", ...prefix] = composeCommand;
    return run(command, [...prefix, "-p", project, "-f", composeFile, ...args], { env, timeoutMs: 170_000 });
  };
  const balancer = () => new RestClient(`http://127.0.0.1:${ports.balancer}`, KEY);
  const replica = (service: ReplicaService) => new RestClient(`http://127.0.0.1:${ports.replicas[service]}`, KEY);
  const redis = async (...command: string[]) => {
    const result = await compose("exec", "-T", "redis", "redis-cli", "-p", String(ports.redis), ...command);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim();
  };
  /** The replica holding the session's lease (`<replica id>:<epoch>`). */
  const owner = async (sessionId: string, replicaIds: Record<ReplicaService, string>): Promise<ReplicaService | undefined> => {
    const lease = await redis("GET", `${PREFIX}lease:${sessionId}`);
    const holder = lease.slice(0, lease.lastIndexOf(":"));
    return REPLICAS.find((service) => replicaIds[service] === holder);
  };

  beforeAll(async () => {
    relayDir = await mkdtemp(join(tmpdir(), "tether-relay-"));
    const free = new Set<number>();
    while (free.size < 5) free.add(await freePort());
    const [balancerPort, redisPort, ...replicaPorts] = [...free] as [number, number, number, number, number];
    ports = { balancer: balancerPort, redis: redisPort, replicas: { "replica-1": replicaPorts[0]!, "replica-2": replicaPorts[1]!, "replica-3": replicaPorts[2]! } };
    env = {
      ...process.env,
      TETHER_CLUSTER_PORT: String(ports.balancer),
      TETHER_CLUSTER_REDIS_PORT: String(ports.redis),
      TETHER_CLUSTER_REPLICA_1_PORT: String(ports.replicas["replica-1"]),
      TETHER_CLUSTER_REPLICA_2_PORT: String(ports.replicas["replica-2"]),
      TETHER_CLUSTER_REPLICA_3_PORT: String(ports.replicas["replica-3"]),
      TETHER_API_KEYS: `alice:${KEY}`,
      TETHER_DOCKER_RELAY_DIR: relayDir,
      TETHER_DOCKER_ORCHESTRATOR_ID: orchestratorId,
      TETHER_LOG_LEVEL: "warn",
    };
  });

  afterAll(async () => {
    if (up) await compose("down", "-v", "--timeout", "60");
    await rm(relayDir, { recursive: true, force: true });
  });

  it("up starts Redis, three replicas and the balancer; a session made through the balancer runs code and is served by every replica", async () => {
    const startedAt = Date.now();
    const started = await compose("up", "-d");
    up = true;
    expect(started.code, started.stderr).toBe(0);
    const running = await docker.listContainers({ filters: { label: [`com.docker.compose.project=${project}`], status: ["running"] } });
    expect(running.map((c) => c.Labels["com.docker.compose.service"]).sort()).toEqual(["balancer", "redis", ...REPLICAS]);

    const replicaIds = {} as Record<ReplicaService, string>;
    for (const service of REPLICAS) {
      const health = await waitFor(
        `${service} answers /healthz`,
        () => replica(service).request("GET", "/healthz", { auth: false }).then((r) => (r.status === 200 ? r.json<{ replicaId?: string }>() : undefined), () => undefined),
        (body) => body?.replicaId !== undefined,
        60_000,
      );
      replicaIds[service] = health!.replicaId!;
    }
    expect(new Set(Object.values(replicaIds)).size).toBe(3);
    shared.replicaIds = replicaIds;

    const client = balancer();
    const session = await client.createSession();
    shared.sessionId = session.id;
    const answer = await client.execute(session.id, { code: "print(6*7)" });
    console.log(`compose cluster: up to first execute in ${Date.now() - startedAt} ms`);
    expect(answer).toMatchObject({ status: "ok", stdout: "42\n", resumed: false, stateLost: false });

    // The record is in Redis, so any replica serves the session (its owner's, or forwarded there).
    expect(await redis("EXISTS", `${PREFIX}session:${session.id}`)).toBe("1");
    for (const service of REPLICAS) {
      const info = await replica(service).getSession(session.id);
      expect(info).toMatchObject({ id: session.id, status: "ready" });
    }
    const ownerService = await owner(session.id, replicaIds);
    expect(ownerService).toBeDefined();
    // Its worker container carries its owner's own orchestrator id, and has no network.
    const container = await sessionContainer(docker, session.id);
    expect(container.Labels[DockerLabels.orchestrator]).toBe(replicaOrchestratorId(ownerService!));
    expect(container.HostConfig.NetworkMode).toBe("none");
  });

  it("stopping the owner's replica scales the session to zero; the next execute through the balancer resumes it on another replica with its files and without its variables", async () => {
    const { sessionId, replicaIds } = shared;
    if (!sessionId || !replicaIds) throw new Error("the first test made no session");
    const client = balancer();
    const before = await client.execute(sessionId, { code: "x = 41\nwith open('kept.txt', 'w') as f:\n    f.write('written before the stop')\nprint(x + 1)" });
    expect(before).toMatchObject({ status: "ok", stdout: "42\n" });

    const stopped = (await owner(sessionId, replicaIds))!;
    const stopAt = Date.now();
    const stop = await compose("stop", "-t", "60", stopped);
    expect(stop.code, stop.stderr).toBe(0);
    console.log(`compose cluster: stop of ${stopped} (the owner) took ${Date.now() - stopAt} ms`);
    // On its way out it snapshotted the session, removed its worker container and relay socket.
    expect(await containersWithLabel(docker, DockerLabels.orchestrator, replicaOrchestratorId(stopped))).toEqual([]);
    expect(await readdir(join(relayDir, stopped))).toEqual([]);

    const info = expectStatus<SessionInfo>(await retryWhileUnavailable(() => client.request("GET", `/v1/sessions/${sessionId}`)), 200, "GET the session");
    expect(info).toMatchObject({ status: "stopped", stopReason: { kind: "orchestrator_shutdown" } });
    expect(info.stopReason?.filesLost).not.toBe(true);
    expect(info.snapshot?.files).toBeGreaterThanOrEqual(1);

    const resumeAt = Date.now();
    const res = await retryWhileUnavailable(() => client.request("POST", `/v1/sessions/${sessionId}/execute`, { json: { code: "print(open('kept.txt').read())\nprint('x' in globals())" } }));
    const after = expectStatus<ExecuteResponse>(res, 200, "execute after the stop");
    console.log(`compose cluster: resumed on another replica in ${Date.now() - resumeAt} ms`);
    // docs/api.md, "Lifecycle": files come back from the snapshot, variables do not, and the response says so.
    expect(after).toMatchObject({ status: "ok", stdout: "written before the stop\nFalse\n", resumed: true, stateLost: true });

    const newOwner = await owner(sessionId, replicaIds);
    expect(newOwner).toBeDefined();
    expect(newOwner).not.toBe(stopped);
    expect((await sessionContainer(docker, sessionId)).Labels[DockerLabels.orchestrator]).toBe(replicaOrchestratorId(newOwner!));

    // down with the session running on its new owner: every worker container and relay socket goes too.
    const down = await compose("down", "-v", "--timeout", "60");
    up = false;
    expect(down.code, down.stderr).toBe(0);
    const projectLabel = `com.docker.compose.project=${project}`;
    expect(await docker.listContainers({ all: true, filters: { label: [projectLabel] } })).toEqual([]);
    for (const service of REPLICAS) {
      expect(await containersWithLabel(docker, DockerLabels.orchestrator, replicaOrchestratorId(service))).toEqual([]);
      expect(await readdir(join(relayDir, service))).toEqual([]);
    }
    expect((await docker.listVolumes({ filters: { label: [projectLabel] } })).Volumes ?? []).toEqual([]);
  });
});

/**
 * Sends again, after its Retry-After, while the answer is `503
 * SESSION_OWNER_UNAVAILABLE` (a session changing hands; nothing was accepted).
 */
async function retryWhileUnavailable(send: () => Promise<ApiResponse>): Promise<ApiResponse> {
  const deadline = Date.now() + FAILOVER_TIMEOUT_MS;
  for (;;) {
    const res = await send();
    if (res.errorCode() !== ErrorCodes.SESSION_OWNER_UNAVAILABLE || Date.now() > deadline) return res;
    const retryAfterS = Number(res.headers["retry-after"]) || 1;
    await new Promise((resolve) => setTimeout(resolve, retryAfterS * 1000));
  }
}
