import { ContainerAppsAPIClient, type ContainerAppsAPIClientOptionalParams, type JobExecutionTemplate } from "@azure/arm-appcontainers";
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import type { Logger } from "pino";
import type { AzureLauncherConfig } from "../config.js";
import { ErrorCodes, tetherError } from "../errors.js";
import { AzureJobExecution, isActiveStatus, stopExecutionTolerant, type AzureExecutionDeps } from "./azure-job-execution.js";
import { launchErrorFromAzure } from "./azure-errors.js";
import type { LaunchHandle, Launcher, LaunchRequest, ReconcileResult } from "./launcher.js";

/** Longest a start (the request and its long-running operation) may take before it counts as failed. */
const START_TIMEOUT_MS = 120_000;

/**
 * The one seam tests use: everything else (client, REST calls, polling) is the
 * production path. Production passes nothing: DefaultAzureCredential (managed
 * identity in Azure, the developer's login locally) and the SDK's pipeline.
 */
export interface AzureClientOverrides {
  /** Replaces DefaultAzureCredential. */
  credential?: TokenCredential;
  /** Extra pipeline policies (a local fake rewrites requests to itself in a `perRetry` policy). */
  additionalPolicies?: ContainerAppsAPIClientOptionalParams["additionalPolicies"];
  /** Replaces the SDK's retry defaults (which retry 429 and 5xx, honouring Retry-After). */
  retryOptions?: ContainerAppsAPIClientOptionalParams["retryOptions"];
}

export interface AzureAcaJobsLauncherOptions {
  config: AzureLauncherConfig;
  logger: Logger;
  client?: AzureClientOverrides;
}

/** Container Apps takes memory as `<number>Gi`: 1536 MiB is `1.5Gi`. Which cpu/memory pairs Azure accepts is Azure's to say (LAUNCH_FAILED). */
export function azureMemory(memoryMb: number): string {
  return `${Number((memoryMb / 1024).toFixed(3))}Gi`;
}

/** Worker env the launcher sets itself; the same names in `request.env` are ignored. */
const OWN_ENV = new Set(["TETHER_ORCHESTRATOR_URL", "TETHER_JOIN_TOKEN", "TETHER_LAUNCH_ID"]);

/**
 * Runs each worker as one execution of an Azure Container Apps Job (manual
 * trigger), started with a template that overrides the worker container's
 * image, resources and env. Executions have no ingress: the worker dials back.
 */
export class AzureAcaJobsLauncher implements Launcher {
  readonly kind = "azure";
  private readonly client: ContainerAppsAPIClient;
  private readonly live = new Map<string, AzureJobExecution>();
  private readonly deps: AzureExecutionDeps;

  constructor(private readonly options: AzureAcaJobsLauncherOptions) {
    const { config } = options;
    const overrides = options.client ?? {};
    this.client = new ContainerAppsAPIClient(overrides.credential ?? new DefaultAzureCredential(), config.subscriptionId, {
      endpoint: config.armEndpoint,
      // Sovereign clouds have their own ARM token audience: the endpoint's origin.
      credentials: { scopes: [`${new URL(config.armEndpoint).origin}/.default`] },
      ...(overrides.additionalPolicies ? { additionalPolicies: overrides.additionalPolicies } : {}),
      ...(overrides.retryOptions ? { retryOptions: overrides.retryOptions } : {}),
    });
    this.deps = { client: this.client, config, target: config };
  }

  async launch(request: LaunchRequest): Promise<LaunchHandle> {
    const { config } = this.options;
    const logger = this.options.logger.child({ launchId: request.launchId, ...(request.sessionId ? { sessionId: request.sessionId } : {}) });
    const template: JobExecutionTemplate = {
      containers: [
        {
          name: config.containerName,
          image: request.profile?.image ?? config.workerImage,
          // Plain values, not secretRefs: anyone who may list the job's executions can read this env,
          // which is why join tokens are single-use, bound to this launch and short-lived.
          env: [
            ...Object.entries(request.env)
              .filter(([name]) => !OWN_ENV.has(name))
              .map(([name, value]) => ({ name, value })),
            { name: "TETHER_ORCHESTRATOR_URL", value: request.orchestratorUrl },
            { name: "TETHER_JOIN_TOKEN", value: request.joinToken },
            { name: "TETHER_LAUNCH_ID", value: request.launchId },
          ],
          resources: {
            cpu: request.profile?.cpu ?? config.cpu,
            memory: request.profile?.memoryMb === undefined ? config.memory : azureMemory(request.profile.memoryMb),
          },
        },
      ],
    };
    let name: string | undefined;
    try {
      const started = await this.client.jobs.start(config.resourceGroup, config.jobName, {
        template,
        updateIntervalInMs: config.pollIntervalMs,
        abortSignal: AbortSignal.timeout(START_TIMEOUT_MS),
      });
      name = started.name;
    } catch (error) {
      const mapped = launchErrorFromAzure(error, "start an execution of", config);
      logger.warn({ code: mapped.code, err: error }, "Azure refused to start a job execution");
      throw mapped;
    }
    if (!name) throw tetherError(ErrorCodes.LAUNCH_FAILED, `Azure started an execution of job '${config.jobName}' but did not name it.`);
    const execution = new AzureJobExecution(request.launchId, name, this.deps, logger.child({ execution: name }));
    this.live.set(name, execution);
    void execution.exited.then(() => this.live.delete(name));
    execution.watch();
    return execution;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((execution) => execution.stop("orchestrator shutting down")));
  }

  /**
   * Stops the job's Running/Processing executions that this launcher did not
   * start. Run before listening, so none of them can belong to a live session.
   * One orchestrator per job: a second replica sharing the job would stop the
   * first one's workers (session ownership is not in a shared store yet).
   */
  async reconcile(): Promise<ReconcileResult> {
    const { config, logger } = this.options;
    const orphans: string[] = [];
    try {
      for await (const execution of this.client.jobsExecutions.list(config.resourceGroup, config.jobName)) {
        if (execution.name && isActiveStatus(execution.status) && !this.live.has(execution.name)) orphans.push(execution.name);
      }
    } catch (error) {
      throw launchErrorFromAzure(error, "list the executions of", config);
    }
    await Promise.all(orphans.map((name) => stopExecutionTolerant(this.deps, name, logger.child({ execution: name }))));
    if (orphans.length > 0) logger.info({ stopped: orphans }, "stopped job executions no session owns");
    return { stopped: orphans };
  }
}
