import type { Logger } from "pino";
import type { KubernetesLauncherConfig } from "../config-kubernetes.js";
import { ErrorCodes, TetherError, tetherError } from "../errors.js";
import { connectKubernetes, type KubernetesApis } from "./kubernetes-client.js";
import { launchErrorFromKubernetes } from "./kubernetes-errors.js";
import { deleteJobTolerant, KubernetesJobLaunch } from "./kubernetes-job-launch.js";
import { buildJoinSecret, buildWorkerJob, orchestratorSelector, workerJobNames } from "./kubernetes-job-spec.js";
import { isJobFinished } from "./kubernetes-pod-status.js";
import type { LaunchHandle, Launcher, LauncherHealth, LaunchRequest, ReconcileResult } from "./launcher.js";

export interface KubernetesJobsLauncherOptions {
  config: KubernetesLauncherConfig;
  logger: Logger;
}

/**
 * Runs each worker as one Kubernetes Job (one pod, never retried) in one
 * namespace, with its join token in a per-launch Secret mounted as a file.
 * Pods need no Service or ingress: the worker dials back.
 */
export class KubernetesJobsLauncher implements Launcher {
  readonly kind = "kubernetes";
  /** By Job name. */
  private readonly live = new Map<string, KubernetesJobLaunch>();
  private apis: Promise<KubernetesApis> | undefined;

  constructor(private readonly options: KubernetesJobsLauncherOptions) {}

  /** Connects on first use (reconcile at start, or the first launch); a failure is retried next time. */
  private connect(): Promise<KubernetesApis> {
    this.apis ??= connectKubernetes(this.options.config).then(
      (apis) => {
        this.options.logger.info({ server: apis.server, namespace: apis.namespace }, "using the Kubernetes API server");
        return apis;
      },
      (error: unknown) => {
        this.apis = undefined;
        throw error;
      },
    );
    return this.apis;
  }

  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    const { config } = this.options;
    const apis = await this.connect();
    const names = workerJobNames(request.launchId);
    const logger = this.options.logger.child({ launchId: request.launchId, job: names.job, ...(request.sessionId ? { sessionId: request.sessionId } : {}) });
    let uid: string | undefined;
    try {
      const created = await apis.batch.createNamespacedJob({ namespace: apis.namespace, body: buildWorkerJob(config, apis.namespace, request) });
      uid = created.metadata?.uid;
    } catch (error) {
      const mapped = launchErrorFromKubernetes(error, "create the worker Job", apis);
      logger.warn({ code: mapped.code, err: error }, "Kubernetes refused to create the worker Job");
      throw mapped;
    }
    try {
      if (!uid) throw tetherError(ErrorCodes.LAUNCH_FAILED, `Kubernetes created Job ${names.job} but did not give its uid.`);
      // After the Job, to be owned by it. Its pod waits for the Secret (the kubelet retries the mount),
      // and the Secret usually exists before the pod is even scheduled.
      await apis.core.createNamespacedSecret({ namespace: apis.namespace, body: buildJoinSecret(config, apis.namespace, request, uid) });
    } catch (error) {
      const mapped = error instanceof TetherError ? error : launchErrorFromKubernetes(error, "create the join token Secret", apis);
      logger.warn({ code: mapped.code, err: error }, "could not create the join token Secret; deleting the Job");
      await deleteJobTolerant(apis, names.job, logger);
      throw mapped;
    }
    const launch = new KubernetesJobLaunch(request.launchId, names, { apis, config }, logger);
    this.live.set(names.job, launch);
    void launch.exited.then(() => this.live.delete(names.job));
    launch.watch();
    return launch;
  }

  /** For /readyz: the API server answers a list of this orchestrator's Jobs (one item), as launches need. */
  async health(): Promise<LauncherHealth> {
    let apis: KubernetesApis;
    try {
      apis = await this.connect();
    } catch (error) {
      return { ok: false, reason: error instanceof TetherError ? `${error.message} [${error.code}]` : String(error) };
    }
    try {
      await apis.batch.listNamespacedJob({ namespace: apis.namespace, labelSelector: orchestratorSelector(this.options.config), limit: 1 });
      return { ok: true, detail: `the Kubernetes API server ${apis.server} lists Jobs in namespace ${apis.namespace}` };
    } catch (error) {
      const mapped = launchErrorFromKubernetes(error, "list the worker Jobs", apis);
      return { ok: false, reason: `${mapped.message} [${mapped.code}]` };
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((launch) => launch.stop("orchestrator shutting down")));
  }

  /**
   * Deletes this orchestrator's unfinished Jobs (its labels, its
   * TETHER_K8S_ORCHESTRATOR_ID) that it did not start. Run before listening,
   * so none of them can belong to a live session. Finished Jobs are left to
   * their TTL, for their logs. One orchestrator per id: a second replica with
   * the same id would delete the first one's workers (session ownership is not
   * in a shared store yet).
   */
  async reconcile(): Promise<ReconcileResult> {
    const { config, logger } = this.options;
    const apis = await this.connect();
    const orphans: string[] = [];
    try {
      let continueToken: string | undefined;
      do {
        const page = await apis.batch.listNamespacedJob({ namespace: apis.namespace, labelSelector: orchestratorSelector(config), limit: 500, ...(continueToken ? { _continue: continueToken } : {}) });
        for (const job of page.items) {
          const name = job.metadata?.name;
          if (name && !isJobFinished(job) && !this.live.has(name)) orphans.push(name);
        }
        continueToken = page.metadata?._continue || undefined;
      } while (continueToken);
    } catch (error) {
      throw launchErrorFromKubernetes(error, "list the worker Jobs", apis);
    }
    const results = await Promise.all(orphans.map((name) => deleteJobTolerant(apis, name, logger.child({ job: name }))));
    const stopped = orphans.filter((_, index) => results[index]);
    if (stopped.length > 0) logger.info({ stopped }, "deleted worker Jobs no session owns");
    return { stopped };
  }
}
