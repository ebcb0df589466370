import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import Docker from "dockerode";
import type { Logger } from "pino";
import type { DockerLauncherConfig } from "../config-docker.js";
import { ErrorCodes, TetherError, tetherError } from "../errors.js";
import { DockerLaunch, isStatus } from "./docker-container.js";
import { DockerLabels, RELAY_MOUNT, buildContainerSpec } from "./docker-container-spec.js";
import { GatewayRelay } from "./docker-relay.js";
import type { LaunchHandle, Launcher, LauncherHealth, LaunchRequest, ReconcileResult } from "./launcher.js";

export { DockerLabels } from "./docker-container-spec.js";

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
      const workerUrl = relay ? relay.workerUrl(RELAY_MOUNT) : request.orchestratorUrl;
      container = await this.docker.createContainer(buildContainerSpec(config, request, workerUrl, relay ? path.join(config.relayDir, request.launchId) : undefined));
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
    logger.info({ container: container.id.slice(0, 12), image: request.profile?.image ?? config.workerImage, profile: request.profile?.name, network: config.network }, "worker container started");
    const launch = new DockerLaunch(request.launchId, container, relay, logger);
    this.live.set(request.launchId, launch);
    void launch.exited.then(() => this.live.delete(request.launchId));
    return launch;
  }

  /** For /readyz: the engine answers its ping. */
  async health(): Promise<LauncherHealth> {
    try {
      await this.docker.ping();
      return { ok: true, detail: `the Docker engine on ${this.options.config.socketPath} answers` };
    } catch (error) {
      const mapped = this.launchError(error, "ping the Docker engine");
      return { ok: false, reason: `${mapped.message} [${mapped.code}]` };
    }
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
