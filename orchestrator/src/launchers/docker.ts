import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import Docker from "dockerode";
import type { Logger } from "pino";
import type { DockerLauncherConfig } from "../config-docker.js";
import { ErrorCodes, TetherError, tetherError } from "../errors.js";
import { DockerLaunch, isStatus } from "./docker-container.js";
import { GatewayRelay } from "./docker-relay.js";
import type { LaunchHandle, Launcher, LaunchRequest, ReconcileResult } from "./launcher.js";

/** Labels on every worker container; reconcile finds orphans by `tether.orchestrator`. */
export const DockerLabels = {
  managedBy: "tether.managed-by",
  orchestrator: "tether.orchestrator",
  launchId: "tether.launch-id",
  sessionId: "tether.session-id",
} as const;

/** Where the relay directory is mounted in the worker container (read-only). */
const RELAY_MOUNT = "/run/tether";
/** The worker image's user (`node`): never root, owns the tmpfs mounts. */
const WORKER_USER = "1000:1000";
/** Worker env the launcher sets itself; the same names in `request.env` are ignored. */
const OWN_ENV = new Set(["TETHER_ORCHESTRATOR_URL", "TETHER_JOIN_TOKEN", "TETHER_JOIN_TOKEN_STDIN", "TETHER_LAUNCH_ID", "TETHER_WORKSPACE"]);

export interface DockerLauncherOptions {
  config: DockerLauncherConfig;
  logger: Logger;
}

/**
 * Runs each worker as one container of the worker image through the Docker
 * Engine API: non-root, read-only root filesystem, tmpfs workspace, memory /
 * CPU / pids limits, all capabilities dropped, and by default no network: the
 * worker dials back through a per-launch unix socket (GatewayRelay) that
 * carries nothing but the gateway upgrade. The join token goes in on stdin,
 * never in the container's env or argv (`docker inspect`, /proc).
 */
export class DockerLauncher implements Launcher {
  readonly kind = "docker";
  private readonly docker: Docker;
  private readonly live = new Map<string, DockerLaunch>();

  constructor(private readonly options: DockerLauncherOptions) {
    this.docker = new Docker({ socketPath: options.config.socketPath });
  }

  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    const { config } = this.options;
    const logger = this.options.logger.child({ launchId: request.launchId, ...(request.sessionId ? { sessionId: request.sessionId } : {}) });
    const relayed = config.network === "none";
    const relay = relayed
      ? await GatewayRelay.open({ directory: path.join(config.relayDir, request.launchId), target: request.orchestratorUrl, logger })
      : undefined;
    let container: Docker.Container | undefined;
    try {
      container = await this.docker.createContainer(this.containerSpec(request, relay));
      // Attach stdin before start: with StdinOnce the token line is all the worker ever reads, then stdin closes.
      const stdin = await container.attach({ stream: true, stdin: true, stdout: false, stderr: false, hijack: true });
      await container.start();
      stdin.end(`${request.joinToken}\n`);
    } catch (error) {
      await container?.remove({ force: true, v: true }).catch(() => undefined);
      await relay?.close().catch(() => undefined);
      const mapped = this.launchError(error, "start a worker container");
      logger.warn({ code: mapped.code, err: error }, "could not start a worker container");
      throw mapped;
    }
    logger.info({ container: container.id.slice(0, 12), image: config.workerImage, network: config.network }, "worker container started");
    const launch = new DockerLaunch(request.launchId, container, relay, logger);
    this.live.set(request.launchId, launch);
    void launch.exited.then(() => this.live.delete(request.launchId));
    return launch;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((launch) => launch.stop("orchestrator shutting down")));
  }

  /**
   * Checks the engine and the worker image (a missing one stops the start: it
   * is never pulled), then removes every container labelled with this
   * orchestrator's id that it did not start, and their leftover relay sockets.
   */
  async reconcile(): Promise<ReconcileResult> {
    const { config, logger } = this.options;
    try {
      await this.docker.getImage(config.workerImage).inspect();
    } catch (error) {
      if (isStatus(error, 404)) {
        throw tetherError(ErrorCodes.LAUNCH_NOT_FOUND, `The worker image '${config.workerImage}' is not in the Docker engine.`, {
          hint: "Build it: docker build --network host -f infra/worker.Dockerfile -t tether-worker:local . (or set TETHER_DOCKER_WORKER_IMAGE)",
        });
      }
      throw this.launchError(error, "inspect the worker image");
    }
    let orphans: Docker.ContainerInfo[];
    try {
      orphans = (await this.docker.listContainers({ all: true, filters: { label: [`${DockerLabels.orchestrator}=${config.orchestratorId}`] } })).filter(
        (info) => !this.live.has(info.Labels[DockerLabels.launchId] ?? ""),
      );
    } catch (error) {
      throw this.launchError(error, "list the worker containers");
    }
    await Promise.all(
      orphans.map((info) =>
        this.docker
          .getContainer(info.Id)
          .remove({ force: true, v: true })
          .catch((error: unknown) => {
            if (!isStatus(error, 404)) logger.warn({ err: error, container: info.Id }, "could not remove an orphaned worker container");
          }),
      ),
    );
    const stopped = orphans.map((info) => info.Labels[DockerLabels.launchId] ?? info.Id);
    await this.removeStaleRelays();
    if (stopped.length > 0) logger.info({ stopped }, "removed worker containers no session owns");
    return { stopped };
  }

  private containerSpec(request: LaunchRequest, relay: GatewayRelay | undefined): Docker.ContainerCreateOptions {
    const { config } = this.options;
    const env = Object.entries(request.env)
      .filter(([name]) => !OWN_ENV.has(name))
      .map(([name, value]) => `${name}=${value}`);
    const workerUrl = relay ? relay.workerUrl(RELAY_MOUNT) : request.orchestratorUrl;
    env.push(`TETHER_ORCHESTRATOR_URL=${workerUrl}`, `TETHER_LAUNCH_ID=${request.launchId}`, "TETHER_JOIN_TOKEN_STDIN=1", "TETHER_WORKSPACE=/workspace");
    const tmpfsOwner = "uid=1000,gid=1000";
    return {
      name: `tether-${request.launchId}`,
      Image: config.workerImage,
      Env: env,
      User: WORKER_USER,
      WorkingDir: "/workspace",
      Labels: {
        [DockerLabels.managedBy]: "tether",
        [DockerLabels.orchestrator]: config.orchestratorId,
        [DockerLabels.launchId]: request.launchId,
        ...(request.sessionId ? { [DockerLabels.sessionId]: request.sessionId } : {}),
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
        Memory: config.memoryBytes,
        MemorySwap: config.memoryBytes,
        NanoCpus: Math.round(config.cpus * 1e9),
        PidsLimit: config.pidsLimit,
        // The only writable places. tmpfs pages count against the memory limit.
        Tmpfs: {
          "/workspace": `rw,exec,nosuid,nodev,size=${config.workspaceBytes},mode=0755,${tmpfsOwner}`,
          "/tmp": "rw,exec,nosuid,nodev,size=268435456,mode=1777",
          "/home/node": `rw,nosuid,nodev,size=67108864,mode=0700,${tmpfsOwner}`,
        },
        ...(relay ? { Binds: [`${path.join(config.relayDir, request.launchId)}:${RELAY_MOUNT}:ro`] } : {}),
        LogConfig: { Type: "json-file", Config: { "max-size": "1m", "max-file": "1" } },
      },
    };
  }

  /** Relay directories of launches that are not running any more (an earlier orchestrator's). */
  private async removeStaleRelays(): Promise<void> {
    const entries = await readdir(this.options.config.relayDir).catch(() => [] as string[]);
    await Promise.all(
      entries.filter((name) => name.startsWith("lch_") && !this.live.has(name)).map((name) => rm(path.join(this.options.config.relayDir, name), { recursive: true, force: true })),
    );
  }

  /** Engine API and socket failures as launch errors with a code a client can act on. */
  private launchError(error: unknown, action: string): TetherError {
    if (error instanceof TetherError) return error;
    const { config } = this.options;
    const code = (error as { code?: unknown }).code;
    const message = ((error as { json?: { message?: string } }).json?.message ?? (error as Error).message ?? String(error)).trim();
    if (code === "ENOENT" || code === "ECONNREFUSED") {
      return tetherError(ErrorCodes.LAUNCH_NOT_FOUND, `Could not ${action}: no Docker engine answers on ${config.socketPath}.`, {
        hint: "Start one (infra/dev/container-engine.sh on Debian) or set TETHER_DOCKER_SOCKET.",
        cause: error,
      });
    }
    if (code === "EACCES") {
      return tetherError(ErrorCodes.LAUNCH_FORBIDDEN, `Could not ${action}: no permission to use ${config.socketPath}.`, {
        hint: "Run the orchestrator as a user in the socket's group (usually docker).",
        cause: error,
      });
    }
    if (isStatus(error, 404) && /no such image/i.test(message)) {
      return tetherError(ErrorCodes.LAUNCH_NOT_FOUND, `Could not ${action}: the worker image '${config.workerImage}' is not in the Docker engine.`, {
        hint: "Build it: docker build --network host -f infra/worker.Dockerfile -t tether-worker:local .",
        cause: error,
      });
    }
    return tetherError(ErrorCodes.LAUNCH_FAILED, `Could not ${action}: ${message}`, { cause: error });
  }
}
