import type { ChildProcess } from "node:child_process";
import { chmod, chown } from "node:fs/promises";
import type { Writable, Readable } from "node:stream";
import type { Logger } from "pino";
import type { SandboxOn } from "../../config-sandbox.js";
import type { LaunchRequest } from "../launcher.js";
import { LaunchRunDir, type Identity } from "../launch-run-dir.js";
import type { WorkerSpawn, WorkerSpawner } from "../worker-spawn.js";
import { SandboxPaths, bwrapInvocation, encodeArgs } from "./bwrap-args.js";
import { GatewayRelay, RELAYED_PATH } from "./gateway-relay.js";
import type { HostLayout } from "./host-layout.js";
import { MemoryWatch } from "./memory-watch.js";
import { sandboxEnvironment } from "./sandbox-environment.js";

/** The fds bwrap gets after stdin, stdout and stderr. */
const ARGS_FD = 3;
const TOKEN_FD = 4;
const INFO_FD = 5;

export interface SandboxSpawnerOptions {
  config: SandboxOn;
  layout: HostLayout;
  /** TETHER_WORKER_COMMAND (default: node worker/dist/main.js), run inside. */
  command: readonly string[];
  runRoot: string;
  /** The uid the sandbox runs as when it is not ours (the orchestrator runs as root). */
  identity: Identity | undefined;
  bwrap: string;
  logger: Logger;
}

/**
 * Runs each worker in bubblewrap (docs/internals.md, "Sandbox layout"): its
 * own namespaces, the system read-only, the workspace at /mnt/data, no
 * network; it dials back through a per-launch unix socket relayed to the
 * worker gateway, and finds its join token in a file bwrap copies into its
 * private /tmp.
 */
export class SandboxSpawner implements WorkerSpawner {
  readonly description: string;
  private readonly memory = new MemoryWatch();

  constructor(private readonly options: SandboxSpawnerOptions) {
    const { config } = options;
    const limits = [
      `${config.memoryMb} MiB`,
      options.layout.nprocPerNamespace ? `${config.maxProcesses} processes` : "no process limit (Linux before 5.14 counts RLIMIT_NPROC per user, not per sandbox)",
      config.cpuSeconds > 0 ? `${config.cpuSeconds} CPU-s per process` : "no CPU limit",
    ];
    this.description = `bubblewrap, ${config.network ? "HOST NETWORK (TETHER_SANDBOX_NETWORK=on)" : "no network"}, ${limits.join(", ")}${options.identity ? `, uid ${options.identity.uid}` : ""}`;
  }

  async prepare(request: LaunchRequest, workspace: string): Promise<WorkerSpawn> {
    const { config, layout, identity, logger } = this.options;
    const log = logger.child({ launchId: request.launchId });
    if (identity) {
      await chown(workspace, identity.uid, identity.gid);
      await chmod(workspace, 0o700);
    }
    const runDir = await LaunchRunDir.create(this.options.runRoot, request.launchId, identity ? 0o711 : 0o700);
    let relay: GatewayRelay;
    try {
      relay = await GatewayRelay.start({ socketPath: runDir.file("gateway.sock"), upstreamUrl: request.orchestratorUrl, logger: log });
    } catch (error) {
      await runDir.remove().catch(() => undefined);
      throw error;
    }
    const invocation = bwrapInvocation({
      layout,
      limits: config,
      network: config.network,
      mounts: { workspace, runDir: runDir.path, joinTokenFd: TOKEN_FD, infoFd: INFO_FD },
      command: this.options.command,
    });
    let stopWatching: () => void = () => undefined;
    return {
      command: this.options.bwrap,
      args: ["--args", String(ARGS_FD), "--", ...invocation.command],
      cwd: "/",
      env: sandboxEnvironment({
        request,
        passEnv: config.passEnv,
        orchestratorUrl: `ws+unix://${SandboxPaths.gatewaySocket}:${RELAYED_PATH}`,
        limits: { memoryMb: config.memoryMb, maxProcesses: config.maxProcesses, cpuSeconds: config.cpuSeconds, killRecord: SandboxPaths.limitKillRecord },
      }),
      ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
      extraPipes: 3,
      started: (child: ChildProcess) => {
        const stdio = child.stdio as unknown as readonly (Readable | Writable | null | undefined)[];
        (stdio[ARGS_FD] as Writable | null | undefined)?.end(encodeArgs(invocation.options));
        (stdio[TOKEN_FD] as Writable | null | undefined)?.end(request.joinToken);
        void readInfo(stdio[INFO_FD] as Readable | null | undefined).then((initPid) => {
          if (initPid === undefined || child.exitCode !== null || child.signalCode !== null) return;
          stopWatching = this.memory.add({ launchId: request.launchId, initPid, limitMb: config.memoryMb, recordPath: runDir.file("limit-kill.json"), logger: log });
        });
      },
      // The token file lives in the sandbox's own /tmp and the worker unlinks it; nothing to do on the host.
      joined: () => undefined,
      cleanUp: async () => {
        stopWatching();
        await relay.close().catch(() => undefined);
        await runDir.remove().catch(() => undefined);
      },
    };
  }
}

/** bwrap writes `{"child-pid": N, ...}` to its info fd once the sandbox's first process exists. */
async function readInfo(stream: Readable | null | undefined): Promise<number | undefined> {
  if (!stream) return undefined;
  let text = "";
  stream.setEncoding("utf8");
  for await (const chunk of stream) text += chunk as string;
  try {
    const pid = (JSON.parse(text) as { "child-pid"?: unknown })["child-pid"];
    return typeof pid === "number" ? pid : undefined;
  } catch {
    return undefined;
  }
}
