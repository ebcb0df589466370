import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { killProcesses, processesUsingDirectory, waitUntilNoProcesses } from "../helpers/processes.js";

/** The statuses ACA reports for an execution (JobExecutionRunningState). */
export type FakeExecutionStatus = "Running" | "Processing" | "Succeeded" | "Failed" | "Stopped";

/** The execution template as ACA receives it: the bare `POST .../start` body. */
export interface FakeTemplate {
  containers: { name: string; image: string; env?: { name: string; value?: string; secretRef?: string }[]; resources?: { cpu?: number; memory?: string } }[];
}

/** Like ACA's stop: SIGTERM, then SIGKILL (ACA waits 30 s; a test need not). */
const KILL_GRACE_MS = 5000;
const STDERR_TAIL_LINES = 40;

/**
 * One job execution in the fake: a record with ACA's fields and, for a real
 * start, the worker process the container would run. Ending it kills every
 * process left in its workspace, as a container teardown would.
 */
export class FakeJobExecution {
  status: FakeExecutionStatus = "Running";
  readonly startTime = new Date();
  endTime: Date | undefined;
  /** properties.message: why it failed. */
  message: string | undefined;
  /** Exit code of the worker, once it exited. */
  exitCode: number | null | undefined;
  readonly stderrTail: string[] = [];
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly id: string,
    readonly template: FakeTemplate | undefined,
    private readonly onChange: () => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get ended(): boolean {
    return this.status === "Succeeded" || this.status === "Failed" || this.status === "Stopped";
  }

  /** Runs `command` with the template's env, as the container would. */
  async spawnWorker(command: readonly string[], workspace: string, extraEnv: Record<string, string>): Promise<void> {
    await mkdir(workspace, { recursive: true });
    const env: Record<string, string | undefined> = { ...process.env, ...extraEnv, TETHER_WORKSPACE: workspace };
    for (const variable of this.template?.containers[0]?.env ?? []) if (variable.value !== undefined) env[variable.name] = variable.value;
    const [program, ...args] = command;
    const child = spawn(program ?? "node", args, { cwd: workspace, detached: true, stdio: ["ignore", "ignore", "pipe"], env });
    this.child = child;
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line.trim()) this.stderrTail.push(line);
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - STDERR_TAIL_LINES));
    });
    this.exitedPromise = new Promise((resolve) => {
      child.once("error", (error) => void this.finish(this.status === "Running" ? "Failed" : this.status, null, error.message, workspace).then(resolve));
      child.once("exit", (code) => {
        const status = this.stopping ? "Stopped" : code === 0 ? "Succeeded" : "Failed";
        void this.finish(status, code, code === 0 ? undefined : `Container 'worker' exited with code ${String(code)}`, workspace).then(resolve);
      });
    });
  }

  /** Running now, Failed with `reason` after `afterMs`, without ever running a worker. */
  failAfter(afterMs: number, reason: string): void {
    setTimeout(() => {
      if (this.ended) return;
      this.status = "Failed";
      this.message = reason;
      this.endTime = new Date();
      this.onChange();
    }, afterMs);
  }

  /** SIGTERM to the process group, SIGKILL after a grace; resolves once everything is gone and the status is Stopped. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.ended) return;
    if (!this.child) {
      this.status = "Stopped";
      this.endTime = new Date();
      this.onChange();
      return;
    }
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), KILL_GRACE_MS);
    await this.exitedPromise;
    clearTimeout(timer);
  }

  private async finish(status: FakeExecutionStatus, code: number | null, message: string | undefined, workspace: string): Promise<void> {
    this.signal("SIGKILL");
    // The container is gone: so is whatever the worker started outside its group (kernels).
    const left = await waitUntilNoProcesses(async () => {
      const found = await processesUsingDirectory(workspace);
      killProcesses(found);
      return found;
    }, KILL_GRACE_MS);
    if (left.length > 0) killProcesses(left);
    await rm(workspace, { recursive: true, force: true });
    this.exitCode = code;
    this.status = status;
    this.message = message;
    this.endTime = new Date();
    this.onChange();
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: already gone
    }
  }

  /** The resource body ACA answers for GET .../executions/{name}. */
  resource(): Record<string, unknown> {
    return {
      id: this.id,
      name: this.name,
      type: "Microsoft.App/jobs/executions",
      properties: {
        status: this.status,
        startTime: this.startTime.toISOString(),
        ...(this.endTime ? { endTime: this.endTime.toISOString() } : {}),
        ...(this.template ? { template: this.template } : {}),
        ...(this.message ? { message: this.message } : {}),
      },
    };
  }
}

export function workspaceFor(root: string, name: string): string {
  return join(root, name);
}
