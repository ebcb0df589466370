import type { ChildProcess } from "node:child_process";
import path from "node:path";
import type { LaunchRequest } from "./launcher.js";
import { LaunchRunDir } from "./launch-run-dir.js";
import { inheritableEnvironment } from "./worker-environment.js";

/** How one local worker process is started: as a plain child, or inside a sandbox. */
export interface WorkerSpawn {
  command: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd: string;
  /** Set when the process must run as another user (a sandbox started by root). */
  uid?: number;
  gid?: number;
  /** How many extra pipes the child gets after stdin, stdout, stderr (fds 3, 4, ...). */
  extraPipes: number;
  /** Called right after spawn: feeds the extra pipes, starts watches. */
  started(child: ChildProcess): void;
  /** The worker dialed back with its token: the token file is no longer needed. */
  joined(): void;
  /** After the process tree is gone: closes what the spawn opened and removes its run dir. Never rejects. */
  cleanUp(): Promise<void>;
}

export interface WorkerSpawner {
  /** One line for the start banner and log, e.g. "bubblewrap (no network, 2048 MiB, ...)". */
  readonly description: string;
  prepare(request: LaunchRequest, workspace: string): Promise<WorkerSpawn>;
}

/**
 * TETHER_SANDBOX=off: the worker runs as a child process with the
 * orchestrator's uid and (non-secret) environment. The join token is in a
 * 0600 file the worker reads and unlinks before it starts Jupyter (removed
 * again after the join, in case it could not), never in its environment.
 */
export class DirectSpawner implements WorkerSpawner {
  readonly description = "none (TETHER_SANDBOX=off): workers run as this user, with this machine's files, processes and network";

  constructor(
    private readonly command: readonly string[],
    private readonly runRoot: string,
  ) {}

  async prepare(request: LaunchRequest, workspace: string): Promise<WorkerSpawn> {
    const runDir = await LaunchRunDir.create(this.runRoot, request.launchId, 0o700);
    const tokenFile = await runDir.writeJoinToken(request.joinToken);
    const [command = "node", ...args] = this.command;
    return {
      command,
      args,
      cwd: workspace,
      env: {
        ...inheritableEnvironment(process.env),
        ...request.env,
        TETHER_ORCHESTRATOR_URL: request.orchestratorUrl,
        TETHER_JOIN_TOKEN_FILE: tokenFile,
        TETHER_LAUNCH_ID: request.launchId,
        TETHER_WORKSPACE: workspace,
      },
      extraPipes: 0,
      started: () => undefined,
      joined: () => void runDir.removeJoinToken(),
      cleanUp: () => runDir.remove().catch(() => undefined),
    };
  }
}

/** `<dataDir>/run`: one directory per launch. */
export function runRootOf(dataDir: string): string {
  return path.join(dataDir, "run");
}
