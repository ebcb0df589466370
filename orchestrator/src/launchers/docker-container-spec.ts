import type Docker from "dockerode";
import type { DockerLauncherConfig } from "../config-docker.js";
import type { LaunchRequest } from "./launcher.js";

/** Labels on every worker container; reconcile finds orphans by `tether.orchestrator`. */
export const DockerLabels = {
  managedBy: "tether.managed-by",
  orchestrator: "tether.orchestrator",
  launchId: "tether.launch-id",
  sessionId: "tether.session-id",
  profile: "tether.profile",
} as const;

/** Where the relay directory is mounted in the worker container (read-only). */
export const RELAY_MOUNT = "/run/tether";
/** The worker image's user (`node`): never root, owns the tmpfs mounts. */
const WORKER_USER = "1000:1000";
/** Worker env the launcher sets itself; the same names in `request.env` are ignored. */
const OWN_ENV = new Set(["TETHER_ORCHESTRATOR_URL", "TETHER_JOIN_TOKEN", "TETHER_JOIN_TOKEN_STDIN", "TETHER_LAUNCH_ID", "TETHER_WORKSPACE"]);
const MiB = 1024 * 1024;

/**
 * The Engine API's create body for one worker container: TETHER_DOCKER_*
 * with the launch's worker profile applied (image, cpu, memoryMb, gpu). The
 * join token is not in it: it goes in on stdin. `relayDir` is the host
 * directory of the launch's relay socket, when the worker has no network.
 */
export function buildContainerSpec(config: DockerLauncherConfig, request: LaunchRequest, workerUrl: string, relayDir: string | undefined): Docker.ContainerCreateOptions {
  const profile = request.profile;
  const memoryBytes = profile?.memoryMb === undefined ? config.memoryBytes : profile.memoryMb * MiB;
  const cpus = profile?.cpu ?? config.cpus;
  const env = Object.entries(request.env)
    .filter(([name]) => !OWN_ENV.has(name))
    .map(([name, value]) => `${name}=${value}`);
  env.push(`TETHER_ORCHESTRATOR_URL=${workerUrl}`, `TETHER_LAUNCH_ID=${request.launchId}`, "TETHER_JOIN_TOKEN_STDIN=1", "TETHER_WORKSPACE=/workspace");
  const tmpfsOwner = "uid=1000,gid=1000";
  return {
    name: `tether-${request.launchId}`,
    Image: profile?.image ?? config.workerImage,
    Env: env,
    User: WORKER_USER,
    WorkingDir: "/workspace",
    Labels: {
      [DockerLabels.managedBy]: "tether",
      [DockerLabels.orchestrator]: config.orchestratorId,
      [DockerLabels.launchId]: request.launchId,
      ...(request.sessionId ? { [DockerLabels.sessionId]: request.sessionId } : {}),
      ...(profile ? { [DockerLabels.profile]: profile.name } : {}),
    },
    AttachStdin: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    HostConfig: {
      NetworkMode: config.network,
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      Memory: memoryBytes,
      MemorySwap: memoryBytes,
      NanoCpus: Math.round(cpus * 1e9),
      PidsLimit: config.pidsLimit,
      // `docker run --gpus N`: needs the NVIDIA container toolkit on the engine's host.
      ...(profile?.gpu ? { DeviceRequests: [{ Driver: "", Count: profile.gpu, DeviceIDs: [], Capabilities: [["gpu"]], Options: {} }] } : {}),
      // The only writable places. tmpfs pages count against the memory limit.
      Tmpfs: {
        "/workspace": `rw,exec,nosuid,nodev,size=${config.workspaceBytes},mode=0755,${tmpfsOwner}`,
        "/tmp": "rw,exec,nosuid,nodev,size=268435456,mode=1777",
        "/home/node": `rw,nosuid,nodev,size=67108864,mode=0700,${tmpfsOwner}`,
      },
      ...(relayDir ? { Binds: [`${relayDir}:${RELAY_MOUNT}:ro`] } : {}),
      LogConfig: { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
    },
  };
}
