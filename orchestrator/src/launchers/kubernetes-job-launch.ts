import type { Logger } from "pino";
import type { KubernetesLauncherConfig } from "../config-kubernetes.js";
import type { KubernetesApis } from "./kubernetes-client.js";
import { kubernetesStatusOf, launchErrorFromKubernetes } from "./kubernetes-errors.js";
import { WORKER_CONTAINER, type WorkerJobNames } from "./kubernetes-job-spec.js";
import { failedCreateMessage, jobOutcome, podOutcome, type WorkerPodOutcome } from "./kubernetes-pod-status.js";
import type { LaunchExit, LaunchHandle } from "./launcher.js";

/** Lines of a failed worker's log kept for the failure reason. */
const LOG_TAIL_LINES = 40;

/** `watching` until the worker dials back, then `joined`; `stopping` once asked to stop; `exited` when known gone. */
type KubernetesLaunchState = "watching" | "joined" | "stopping" | "exited";

export interface KubernetesLaunchDeps {
  apis: KubernetesApis;
  config: KubernetesLauncherConfig;
}

/**
 * One worker Job. Until the worker dials back it looks at the Job's pod every
 * `pollIntervalMs`, so a pod that fails first (image pull error, crash, a
 * quota or admission refusal) settles `exited` with Kubernetes' reason
 * within one interval instead of leaving the session to time out. Once the
 * worker joined, its join token Secret is deleted and the connection is the
 * only signal.
 */
export class KubernetesJobLaunch implements LaunchHandle {
  readonly exited: Promise<LaunchExit>;
  private state: KubernetesLaunchState = "watching";
  private settle!: (exit: LaunchExit) => void;
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private lastNote: string | undefined;
  private secretDeletion: Promise<void> | undefined;
  /** The Job's pod, once seen: its log explains a failure. */
  private podName: string | undefined;

  constructor(
    readonly launchId: string,
    readonly names: WorkerJobNames,
    private readonly deps: KubernetesLaunchDeps,
    private readonly logger: Logger,
  ) {
    this.exited = new Promise<LaunchExit>((resolve) => {
      this.settle = (exit) => {
        if (this.state === "exited") return;
        this.state = "exited";
        this.clearTimer();
        this.logger.info({ code: exit.code, reason: exit.reason }, "worker Job ended");
        resolve(exit);
      };
    });
    this.logger.info("worker Job created");
  }

  /** Starts watching the Job's pod. */
  watch(): void {
    this.schedulePoll();
  }

  joined(): void {
    if (this.state !== "watching") return;
    this.state = "joined";
    this.clearTimer();
    this.logger.debug("worker dialed back; no longer watching its pod");
    // The token is spent: nobody needs the Secret any more (the GC would remove it with the Job).
    void this.deleteSecret();
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  /** Deletes the Job even once `exited`: a pod stuck in ImagePullBackOff has "ended" for Tether, not for Kubernetes. */
  private async doStop(reason: string): Promise<void> {
    if (this.state !== "exited") this.state = "stopping";
    this.clearTimer();
    this.logger.info({ reason }, "deleting worker Job");
    const [deleted] = await Promise.all([deleteJobTolerant(this.deps.apis, this.names.job, this.logger), this.deleteSecret()]);
    if (deleted) this.settle({ code: null, signal: null, reason: `Kubernetes Job ${this.names.job} was deleted (${reason})`, stderrTail: [] });
  }

  /** Deletes the join token Secret once; a 404 (already gone) is success. */
  private deleteSecret(): Promise<void> {
    this.secretDeletion ??= (async () => {
      const { apis } = this.deps;
      try {
        await apis.core.deleteNamespacedSecret({ name: this.names.secret, namespace: apis.namespace });
      } catch (error) {
        if (kubernetesStatusOf(error) === 404) return;
        const mapped = launchErrorFromKubernetes(error, `delete Secret ${this.names.secret}`, apis);
        this.logger.warn({ code: mapped.code, err: error, hint: mapped.hint }, "could not delete the join token Secret; the garbage collector removes it with the Job");
      }
    })();
    return this.secretDeletion;
  }

  private schedulePoll(): void {
    if (this.state !== "watching") return;
    this.timer = setTimeout(() => void this.poll(), this.deps.config.pollIntervalMs);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    try {
      const outcome = await this.look();
      if (this.state !== "watching") return;
      if (outcome.kind === "ended") {
        this.settle({ code: outcome.code, signal: null, reason: outcome.reason, stderrTail: await this.logTail() });
        return;
      }
      if (outcome.kind === "starting" && outcome.note && outcome.note !== this.lastNote) this.logger.warn({ note: outcome.note }, "the worker pod is not scheduled yet");
      if (outcome.kind === "starting") this.lastNote = outcome.note;
    } catch (error) {
      // Keep watching through transient failures; say so once per distinct error.
      const mapped = launchErrorFromKubernetes(error, `read Job ${this.names.job}`, this.deps.apis);
      if (mapped.message !== this.lastNote) this.logger.warn({ code: mapped.code, err: error, hint: mapped.hint }, "could not read the worker pod's status");
      this.lastNote = mapped.message;
    }
    this.schedulePoll();
  }

  /** The pod when there is one; otherwise the Job (gone, failed) and why it has no pod (FailedCreate events). */
  private async look(): Promise<WorkerPodOutcome> {
    const { apis } = this.deps;
    const pods = await apis.core.listNamespacedPod({ namespace: apis.namespace, labelSelector: `job-name=${this.names.job}` });
    const pod = pods.items[0];
    if (pod) {
      this.podName = pod.metadata?.name;
      return podOutcome(pod);
    }
    let job;
    try {
      job = await apis.batch.readNamespacedJob({ name: this.names.job, namespace: apis.namespace });
    } catch (error) {
      if (kubernetesStatusOf(error) === 404) return { kind: "ended", code: null, reason: `Kubernetes Job ${this.names.job} no longer exists` };
      throw error;
    }
    const outcome = jobOutcome(job);
    if (outcome.kind === "ended") return outcome;
    try {
      const events = await apis.core.listNamespacedEvent({
        namespace: apis.namespace,
        fieldSelector: `involvedObject.kind=Job,involvedObject.name=${this.names.job}`,
      });
      const refused = failedCreateMessage(this.names.job, events.items);
      if (refused) return { kind: "ended", code: null, reason: refused };
    } catch (error) {
      // Events only sharpen the reason: without permission to list them, the start times out instead.
      if (kubernetesStatusOf(error) !== 403) throw error;
    }
    return { kind: "starting" };
  }

  /** The last lines the worker logged, when its pod ran at all; none without permission (pods/log). */
  private async logTail(): Promise<string[]> {
    const { apis } = this.deps;
    if (!this.podName) return [];
    try {
      const log = await apis.core.readNamespacedPodLog({ name: this.podName, namespace: apis.namespace, container: WORKER_CONTAINER, tailLines: LOG_TAIL_LINES });
      return String(log).split("\n").filter((line) => line.trim());
    } catch (error) {
      this.logger.debug({ err: error }, "could not read the worker pod's log");
      return [];
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * Deletes a Job and, through the garbage collector (propagationPolicy
 * Background), its pod and Secret; true once deleted or already gone. False
 * (logged) when it may still exist: the next orchestrator start deletes it.
 */
export async function deleteJobTolerant(apis: KubernetesApis, name: string, logger: Logger): Promise<boolean> {
  try {
    await apis.batch.deleteNamespacedJob({ name, namespace: apis.namespace, propagationPolicy: "Background" });
    return true;
  } catch (error) {
    if (kubernetesStatusOf(error) === 404) return true;
    const mapped = launchErrorFromKubernetes(error, `delete Job ${name}`, apis);
    logger.warn({ code: mapped.code, err: error, hint: mapped.hint }, "could not delete the worker Job; the next orchestrator start deletes it");
    return false;
  }
}
