import { createHash } from "node:crypto";
import { hostname } from "node:os";
import path from "node:path";
import { MiB, readByteSize, readInteger, readString, type Env } from "./config-readers.js";
import { configInvalid } from "./errors.js";

/** How the `docker` launcher runs one container per worker (docs/internals.md, "docker"). */
export interface DockerLauncherConfig {
  /** TETHER_DOCKER_SOCKET: the Docker Engine API's unix socket, default /var/run/docker.sock. */
  socketPath: string;
  /** TETHER_DOCKER_WORKER_IMAGE: image of every worker container (never pulled), default `tether-worker:local`. */
  workerImage: string;
  /** TETHER_DOCKER_MEMORY: memory limit per worker, swap included (the workspace tmpfs counts too), default 2g. */
  memoryBytes: number;
  /** TETHER_DOCKER_CPUS: CPUs per worker, default 1. */
  cpus: number;
  /** TETHER_DOCKER_PIDS_LIMIT: processes and threads per worker, default 512. */
  pidsLimit: number;
  /** TETHER_DOCKER_WORKSPACE_SIZE: size of the /workspace tmpfs, default 1g. */
  workspaceBytes: number;
  /**
   * TETHER_DOCKER_NETWORK, default `none`: no network at all; the worker dials back
   * through a per-launch unix socket that only relays the gateway upgrade. `host`: the
   * worker dials the orchestrator URL directly (meant for a loopback URL; user code then
   * has the host's network). Any other value names a Docker network (untested).
   */
  network: string;
  /** TETHER_DOCKER_RELAY_DIR: where per-launch relay sockets are created; the same path must exist on the Docker host. Default `<data dir>/docker-relay`. */
  relayDir: string;
  /** TETHER_DOCKER_ORCHESTRATOR_ID: value of the `tether.orchestrator` label; reconcile removes only containers carrying it. Default: derived from the host name and data dir. */
  orchestratorId: string;
}

/** TETHER_DOCKER_* for the docker launcher. */
export function readDockerConfig(env: Env, dataDir: string): DockerLauncherConfig {
  const socketPath = readString(env, "TETHER_DOCKER_SOCKET", "/var/run/docker.sock");
  if (!path.isAbsolute(socketPath)) throw configInvalid(`TETHER_DOCKER_SOCKET must be an absolute path to the Docker socket, got '${socketPath}'.`);
  const cpusRaw = readString(env, "TETHER_DOCKER_CPUS", "1");
  const cpus = Number(cpusRaw);
  if (!/^\d+(\.\d+)?$/.test(cpusRaw) || cpus < 0.01) throw configInvalid(`TETHER_DOCKER_CPUS must be a number of CPUs of at least 0.01 (e.g. 0.5), got '${cpusRaw}'.`);
  const network = readString(env, "TETHER_DOCKER_NETWORK", "none");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(network)) throw configInvalid(`TETHER_DOCKER_NETWORK must be 'none', 'host' or a Docker network name, got '${network}'.`);
  const relayDir = path.resolve(readString(env, "TETHER_DOCKER_RELAY_DIR", path.join(dataDir, "docker-relay")));
  const orchestratorId = readString(env, "TETHER_DOCKER_ORCHESTRATOR_ID", createHash("sha256").update(`${hostname()}:${dataDir}`).digest("hex").slice(0, 16));
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(orchestratorId)) {
    throw configInvalid(`TETHER_DOCKER_ORCHESTRATOR_ID may only use letters, digits, '_', '.' and '-' (at most 63), got '${orchestratorId}'.`);
  }
  return {
    socketPath,
    workerImage: readString(env, "TETHER_DOCKER_WORKER_IMAGE", "tether-worker:local"),
    memoryBytes: readByteSize(env, "TETHER_DOCKER_MEMORY", "2g", 64 * MiB),
    cpus,
    pidsLimit: readInteger(env, "TETHER_DOCKER_PIDS_LIMIT", 512, 16),
    workspaceBytes: readByteSize(env, "TETHER_DOCKER_WORKSPACE_SIZE", "1g", MiB),
    network,
    relayDir,
    orchestratorId,
  };
}
