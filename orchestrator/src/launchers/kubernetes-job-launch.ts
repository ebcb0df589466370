import type { Logger } from "pino";
import type { KubernetesLauncherConfig } from "../config-kubernetes.js";
import type { KubernetesApis } from "./kubernetes-client.js";
import { kubernetesStatusOf, launchErrorFromKubernetes } from "./kubernetes-errors.js";
import { WORKER_CONTAINER, type WorkerJobNames } from "./kubernetes-job-spec.js";
import { failedCreateMessage, jobOutcome, podOutcome, type WorkerPodOutcome } from "./kubernetes-pod-status.js";
import type { LaunchExit } from "./launcher.js";
import { WatchedLaunch, type WatchFailure } from "./watched-launch.js";

/** Lines of a failed worker's log kept for the failure reason. */
const LOG_TAIL_LINES = 40;

export interface KubernetesLaunchDeps {
  apis: KubernetesApis;
  config: KubernetesLauncherConfig;
}

/**
 * One worker Job, watched until the worker dials back (WatchedLaunch: a pod
 * that fails first, an image pull error, a crash, a quota or admission
 * refusal, settles with Kubernetes' reason). Once the worker joined, its join
 * token Secret is deleted.
 */
export class KubernetesJobLaunch extends WatchedLaunch {
  private secretDeletion: Promise<void> | undefined;
  /** The Job's pod, once seen: its log explains a failure. */
  private podName: string | undefined;

  constructor(
    launchId: string,
    readonly names: WorkerJobNames,
    private readonly deps: KubernetesLaunchDeps,
    logger: Logger,
  ) {
    super(launchId, logger, deps.config.pollIntervalMs, {
      started: "worker Job created",
      ended: "worker Job ended",
      joined: "worker dialed back; no longer watching its pod",
      readFailed: "could not read the worker pod's status",
    });
  }

  protected override onJoined(): void {
    // The token is spent: nobody needs the Secret any more (the GC would remove it with the Job).
    void this.deleteSecret();
  }

  /** Deletes the Job even once `exited`: a pod stuck in ImagePullBackOff has "ended" for Tether, not for Kubernetes. */
  protected async stopLaunch(reason: string): Promise<void> {
    if (this.state !== "exited") this.state = "stopping";
    this.clearTimer();
    this.logger.info({ reason }, "deleting worker Job");
    const [deleted] = await Promise.all([deleteJobTolerant(this.deps.apis, this.names.job, this.logger), this.deleteSecret()]);
    if (deleted) this.settle({ code: null, signal: null, reason: `Kubernetes Job ${this.names.job} was deleted (${reason})`, stderrTail: [] });
  }

  protected async look(): Promise<LaunchExit | undefined> {
    const outcome = await this.outcome();
    if (outcome.kind === "ended") return { code: outcome.code, signal: null, reason: outcome.reason, stderrTail: await this.logTail() };
    if (outcome.kind === "starting" && outcome.note) this.warnOnce(outcome.note, { note: outcome.note }, "the worker pod is not scheduled yet");
    return undefined;
  }

  protected describeFailure(error: unknown): WatchFailure {
    return launchErrorFromKubernetes(error, `read Job ${this.names.job}`, this.deps.apis);
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



  /** The pod when there is one; otherwise the Job (gone, failed) and why it has no pod (FailedCreate events). */
  private async outcome(): Promise<WorkerPodOutcome> {
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
