import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { killProcesses, processesUsingDirectory, waitUntilNoProcesses } from "../helpers/processes.js";
import type { ContainerBody, PodSpecBody } from "./fake-kube-objects.js";

export type FakePodPhase = "Pending" | "Running" | "Succeeded" | "Failed";

/** What the fake's "kubelet" needs from the API server side. */
export interface FakeKubelet {
  /** Root of every pod's volumes on this machine. */
  root: string;
  /** What the container runs instead of pulling `image`: the real worker. */
  workerCommand: readonly string[];
  /** The image's own environment (PATH, TETHER_PYTHON, ...), under the pod spec's env. */
  imageEnv: Readonly<Record<string, string>>;
  /** Resolves with the Secret's data once it exists (a pod waits for its Secret volumes, as the kubelet does). */
  secretData(name: string, cancelled: () => boolean): Promise<Record<string, Buffer> | undefined>;
  changed(): void;
}

/** A fake image pull failure: the container waits with this reason, then with ImagePullBackOff. */
export interface PullFailure {
  reason: string;
  message: string;
}

const LOG_LINES = 1000;
/** Kubernetes waits terminationGracePeriodSeconds; a test need not wait more than this. */
const MAX_KILL_GRACE_MS = 5000;
const BACKOFF_AFTER_MS = 300;
const SIGNAL_NUMBERS: Record<string, number> = { SIGTERM: 15, SIGKILL: 9, SIGINT: 2 };

/**
 * One pod of a Job, "run" by a fake kubelet: it waits for its Secret volumes,
 * materialises its volumes in a temp directory (a Secret's keys as files with
 * their mode), maps each mountPath onto them (env values and workingDir that
 * point into a mount are rewritten to the directory on this machine), and
 * spawns the real worker with the pod spec's env over the image's.
 */
export class FakePod {
  phase: FakePodPhase = "Pending";
  readonly uid = randomUUID();
  readonly createdAt = new Date();
  waiting: { reason: string; message?: string } | undefined = { reason: "ContainerCreating" };
  startedAt: Date | undefined;
  terminated: { exitCode: number; reason: string; message?: string; finishedAt: Date } | undefined;
  /** The container's log (the worker's stderr lines). */
  readonly log: string[] = [];
  /** mountPath in the container → directory on this machine. */
  readonly mounts = new Map<string, string>();
  /** Set when the scheduler cannot place the pod: it stays Pending with this PodScheduled=False message. */
  unschedulable: string | undefined;
  /** The container's env as the worker process got it (paths rewritten). */
  processEnv: Record<string, string> | undefined;
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  private deleted = false;
  private readonly dir: string;

  constructor(
    readonly name: string,
    readonly namespace: string,
    readonly labels: Record<string, string>,
    readonly spec: PodSpecBody,
    readonly owner: { name: string; uid: string },
    private readonly kubelet: FakeKubelet,
  ) {
    this.dir = join(kubelet.root, name);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get ended(): boolean {
    return this.phase === "Succeeded" || this.phase === "Failed";
  }

  /** The directory on this machine behind a path in the container, if it is inside a mount. */
  hostPath(containerPath: string): string | undefined {
    const mountPath = [...this.mounts.keys()].sort((a, b) => b.length - a.length).find((mount) => containerPath === mount || containerPath.startsWith(`${mount}/`));
    return mountPath === undefined ? undefined : join(this.mounts.get(mountPath) ?? "", containerPath.slice(mountPath.length));
  }

  /** The kubelet's part: volumes, image, container. Never rejects: failures become statuses. */
  async run(pullFailure: PullFailure | undefined, command: readonly string[] = this.kubelet.workerCommand): Promise<void> {
    const container = this.spec.containers?.[0];
    if (!container) return;
    const secrets = new Map<string, Record<string, Buffer>>();
    for (const volume of this.spec.volumes ?? []) {
      if (!volume.secret?.secretName || !volume.name) continue;
      const data = await this.kubelet.secretData(volume.secret.secretName, () => this.deleted);
      if (!data) return; // deleted while waiting
      secrets.set(volume.name, data);
    }
    if (this.deleted) return;
    if (pullFailure) return this.failPull(container, pullFailure);
    try {
      await this.materialiseVolumes(container, secrets);
      this.spawnContainer(container, command);
    } catch (error) {
      this.waiting = { reason: "CreateContainerError", message: (error as Error).message };
      this.kubelet.changed();
    }
  }

  private failPull(container: ContainerBody, failure: PullFailure): void {
    this.waiting = { reason: failure.reason, message: failure.message };
    this.kubelet.changed();
    setTimeout(() => {
      if (this.deleted) return;
      this.waiting = { reason: "ImagePullBackOff", message: `Back-off pulling image "${container.image ?? ""}"` };
      this.kubelet.changed();
    }, BACKOFF_AFTER_MS).unref();
  }

  private async materialiseVolumes(container: ContainerBody, secrets: Map<string, Record<string, Buffer>>): Promise<void> {
    const volumeDirs = new Map<string, string>();
    for (const volume of this.spec.volumes ?? []) {
      if (!volume.name) continue;
      const dir = join(this.dir, "volumes", volume.name);
      await mkdir(dir, { recursive: true });
      volumeDirs.set(volume.name, dir);
      const data = secrets.get(volume.name);
      if (!data) continue;
      const items = volume.secret?.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        const bytes = data[item.key];
        if (!bytes) throw new Error(`secret "${volume.secret?.secretName ?? ""}" has no key "${item.key}"`);
        const file = join(dir, item.path);
        await writeFile(file, bytes);
        await chmod(file, volume.secret?.defaultMode ?? 0o644);
      }
    }
    for (const mount of container.volumeMounts ?? []) {
      const dir = mount.name ? volumeDirs.get(mount.name) : undefined;
      if (dir && mount.mountPath) this.mounts.set(mount.mountPath, dir);
    }
  }

  private spawnContainer(container: ContainerBody, command: readonly string[]): void {
    const rewrite = (value: string): string => (value.startsWith("/") ? (this.hostPath(value) ?? value) : value);
    const env: Record<string, string> = { ...this.kubelet.imageEnv };
    for (const variable of container.env ?? []) if (variable.name && variable.value !== undefined) env[variable.name] = rewrite(variable.value);
    this.processEnv = env;
    const cwd = container.workingDir ? rewrite(container.workingDir) : this.dir;
    const [program, ...args] = command;
    const child = spawn(program ?? "node", args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        for (const line of chunk.split("\n")) if (line.trim()) this.log.push(line);
        this.log.splice(0, Math.max(0, this.log.length - LOG_LINES));
      });
    }
    this.exitedPromise = new Promise((resolve) => {
      child.once("error", (error) => void this.finish(128, "StartError", error.message).then(resolve));
      child.once("exit", (code, signal) => {
        const exitCode = code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 1) : 1);
        void this.finish(exitCode, exitCode === 0 ? "Completed" : "Error", undefined).then(resolve);
      });
    });
    this.waiting = undefined;
    this.startedAt = new Date();
    this.phase = "Running";
    this.kubelet.changed();
  }

  /** The worker process dies (OOM, a crash, `kill -9`): the pod fails, as with restartPolicy Never. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.signal(signal);
  }

  /** Deletion: SIGTERM, SIGKILL after the grace period; resolves once every process is gone. */
  async delete(): Promise<void> {
    this.deleted = true;
    if (!this.child || this.ended) {
      await rm(this.dir, { recursive: true, force: true });
      return;
    }
    this.signal("SIGTERM");
    const graceMs = Math.min(MAX_KILL_GRACE_MS, (this.spec.terminationGracePeriodSeconds ?? 30) * 1000);
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await this.exitedPromise;
    clearTimeout(timer);
  }

  private async finish(exitCode: number, reason: string, message: string | undefined): Promise<void> {
    this.signal("SIGKILL");
    // The container is gone: so is whatever the worker started outside its group (kernels).
    const left = await waitUntilNoProcesses(async () => {
      const found = await processesUsingDirectory(this.dir);
      killProcesses(found);
      return found;
    }, MAX_KILL_GRACE_MS);
    if (left.length > 0) killProcesses(left);
    await rm(this.dir, { recursive: true, force: true });
    this.terminated = { exitCode, reason, ...(message ? { message } : {}), finishedAt: new Date() };
    this.phase = exitCode === 0 ? "Succeeded" : "Failed";
    this.kubelet.changed();
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

  /** The Pod as GET/LIST answer it. */
  resource(): Record<string, unknown> {
    const container = this.spec.containers?.[0];
    const state = this.terminated
      ? { terminated: { exitCode: this.terminated.exitCode, reason: this.terminated.reason, ...(this.terminated.message ? { message: this.terminated.message } : {}), startedAt: this.startedAt?.toISOString(), finishedAt: this.terminated.finishedAt.toISOString() } }
      : this.waiting
        ? { waiting: this.waiting }
        : { running: { startedAt: this.startedAt?.toISOString() } };
    return {
      metadata: {
        name: this.name,
        namespace: this.namespace,
        uid: this.uid,
        labels: this.labels,
        creationTimestamp: this.createdAt.toISOString(),
        ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: this.owner.name, uid: this.owner.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: this.spec,
      status: {
        phase: this.phase,
        conditions: [
          this.unschedulable
            ? { type: "PodScheduled", status: "False", reason: "Unschedulable", message: this.unschedulable, lastTransitionTime: this.createdAt.toISOString() }
            : { type: "PodScheduled", status: "True", lastTransitionTime: this.createdAt.toISOString() },
        ],
        startTime: this.createdAt.toISOString(),
        containerStatuses: this.unschedulable ? [] : [
          { name: container?.name ?? "", image: container?.image ?? "", imageID: "", ready: this.phase === "Running", started: this.phase === "Running", restartCount: 0, state },
        ],
      },
    };
  }
}
