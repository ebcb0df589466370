import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { constants } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import type { LaunchExit, LaunchHandle, Launcher, LaunchRequest } from "./launcher.js";
import { killLaunchStragglers } from "./process-sweep.js";
import type { WorkerSpawn, WorkerSpawner } from "./worker-spawn.js";

/** Lines of worker stderr kept for failure reasons. */
const STDERR_TAIL_LINES = 40;
/** SIGTERM first; whatever still runs after this gets SIGKILL. */
const KILL_GRACE_MS = 5000;

export interface LocalProcessLauncherOptions {
  /** How each worker process is started: in a sandbox (SandboxSpawner) or directly (DirectSpawner). */
  spawner: WorkerSpawner;
  /** Each launch gets `<workspacesDir>/<launchId>/`. */
  workspacesDir: string;
  logger: Logger;
}

type LocalLaunchState = "running" | "stopping" | "released" | "exited";

/** Runs each worker as a local process (by default in a bubblewrap sandbox) in its own process group and workspace directory. */
export class LocalProcessLauncher implements Launcher {
  readonly kind = "local";
  private readonly live = new Set<LocalProcessLaunch>();

  constructor(private readonly options: LocalProcessLauncherOptions) {}

  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    const workspace = path.join(this.options.workspacesDir, request.launchId);
    await mkdir(workspace, { recursive: true, mode: 0o700 });
    let prepared: WorkerSpawn;
    try {
      prepared = await this.options.spawner.prepare(request, workspace);
    } catch (error) {
      await rm(workspace, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
    const launch = new LocalProcessLaunch(request, workspace, prepared, this.options.logger);
    this.live.add(launch);
    void launch.finished.then(() => this.live.delete(launch));
    launch.onReleased = () => this.live.delete(launch);
    return launch;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((launch) => launch.stop("orchestrator shutting down")));
  }
}

class LocalProcessLaunch implements LaunchHandle {
  readonly launchId: string;
  readonly exited: Promise<LaunchExit>;
  /** Settles after stop() cleaned up (or the process exited and was swept). */
  readonly finished: Promise<void>;
  private state: LocalLaunchState = "running";
  private readonly child: ChildProcess;
  private readonly stderrTail: string[] = [];
  private stderrPartial = "";
  private stopping: Promise<void> | undefined;
  private resolveFinished!: () => void;
  private readonly logger: Logger;
  /** The launcher forgets a released launch (its stopAll must not kill it). */
  onReleased: (() => void) | undefined;

  constructor(
    request: LaunchRequest,
    private readonly workspace: string,
    private readonly spawned: WorkerSpawn,
    logger: Logger,
  ) {
    this.launchId = request.launchId;
    this.logger = logger.child({ launchId: request.launchId, sessionId: request.sessionId });
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    const stdio: StdioOptions = ["ignore", "ignore", "pipe", ...Array<"pipe">(spawned.extraPipes).fill("pipe")];
    this.child = spawn(spawned.command, [...spawned.args], {
      cwd: spawned.cwd,
      // Own process group: stop() signals the whole group with kill(-pid).
      detached: true,
      stdio,
      env: { ...spawned.env },
      ...(spawned.uid !== undefined ? { uid: spawned.uid } : {}),
      ...(spawned.gid !== undefined ? { gid: spawned.gid } : {}),
    });
    // The extra pipes (bwrap's args, join token, info) are socketpairs: a sandbox killed before
    // reading them resets ours (ECONNRESET), which with no listener is an uncaught exception
    // that takes the orchestrator down (seen on a CI run). The exit path reports what matters.
    for (const stream of this.child.stdio) stream?.on("error", (error: Error) => this.logger.debug({ err: error }, "a pipe to the worker process failed"));
    if (this.child.pid !== undefined) spawned.started(this.child);
    this.logger.info({ pid: this.child.pid, workspace, command: spawned.command }, "worker process started");
    this.child.stderr?.setEncoding("utf8");
    this.child.stderr?.on("data", (chunk: string) => this.onStderr(chunk));
    this.exited = new Promise<LaunchExit>((resolve) => {
      let settled = false;
      const settle = (exit: LaunchExit): void => {
        if (settled) return;
        settled = true;
        this.state = "exited";
        this.flushStderr();
        this.logger.info({ code: exit.code, signal: exit.signal }, "worker process exited");
        resolve({ ...exit, stderrTail: [...this.stderrTail] });
        // An exit nobody asked for still leaves kernels behind: sweep them.
        if (!this.stopping) void this.cleanUp().then(this.resolveFinished);
      };
      this.child.once("error", (error) => settle({ code: null, signal: null, reason: `the worker could not be started: ${error.message}`, stderrTail: [] }));
      this.child.once("exit", (code, signal) => {
        // Give stderr a moment to deliver the last lines the worker wrote.
        setTimeout(() => settle({ code, signal, reason: describeExit(code, signal), stderrTail: [] }), 50);
      });
    });
  }

  stop(reason: string): Promise<void> {
    if (this.state === "released") return Promise.resolve();
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  /**
   * Handed to another replica: no longer ours to stop, sweep or wait for (it
   * outlives this process). Only an unsandboxed worker can: a sandbox and its
   * relay end with the process that started them.
   */
  release(): void {
    if (this.state !== "running") return;
    this.state = "released";
    this.stopping = Promise.resolve();
    this.logger.info({ pid: this.child.pid }, "worker handed to another replica; no longer watched");
    this.child.unref();
    this.child.stderr?.destroy();
    this.onReleased?.();
    this.resolveFinished();
  }

  joined(): void {
    this.spawned.joined();
  }

  private async doStop(reason: string): Promise<void> {
    if (this.state === "running") {
      this.state = "stopping";
      this.logger.info({ reason }, "stopping worker");
      this.signalGroup("SIGTERM");
      const exitedInTime = await Promise.race([this.exited.then(() => true), delay(KILL_GRACE_MS).then(() => false)]);
      if (!exitedInTime) {
        this.logger.warn("worker ignored SIGTERM; sending SIGKILL");
        this.signalGroup("SIGKILL");
        await Promise.race([this.exited, delay(2000)]);
      }
    }
    await this.cleanUp();
    this.resolveFinished();
  }

  /** Kills what is left of the group and any process carrying our launch id, then removes the workspace. */
  private async cleanUp(): Promise<void> {
    this.signalGroup("SIGKILL");
    const stragglers = await killLaunchStragglers(this.launchId);
    if (stragglers > 0) this.logger.info({ stragglers }, "killed processes left behind by the worker");
    await this.spawned.cleanUp();
    await rm(this.workspace, { recursive: true, force: true }).catch((error: unknown) =>
      this.logger.warn({ err: error }, "could not remove the workspace"),
    );
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  private onStderr(chunk: string): void {
    const text = this.stderrPartial + chunk;
    const lines = text.split("\n");
    this.stderrPartial = lines.pop() ?? "";
    for (const line of lines) this.keepLine(line);
  }

  private flushStderr(): void {
    if (this.stderrPartial) this.keepLine(this.stderrPartial);
    this.stderrPartial = "";
  }

  private keepLine(line: string): void {
    if (!line.trim()) return;
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    if (this.logger.isLevelEnabled("debug")) this.logger.debug({ workerLog: line }, "worker log");
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `the worker was killed by ${signal}`;
  // bwrap exits 128+N when the worker inside was killed by signal N.
  const inside = code !== null && code > 128 ? signalName(code - 128) : undefined;
  if (inside === "SIGXCPU") return `the worker was killed by SIGXCPU: it used more than its CPU time limit (TETHER_SANDBOX_CPU_SECONDS)`;
  if (inside) return `the worker exited with code ${code} (killed by ${inside})`;
  switch (code) {
    case 0:
      return "the worker exited";
    case 2:
      return "the worker exited with code 2 (join refused)";
    case 3:
      return "the worker exited with code 3 (no usable Python runtime)";
    default:
      return `the worker exited with code ${String(code)}`;
  }
}

function signalName(number: number): string | undefined {
  return Object.entries(constants.signals).find(([, value]) => value === number)?.[0];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
