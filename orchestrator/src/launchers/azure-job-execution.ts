import type { ContainerAppsAPIClient, JobExecution } from "@azure/arm-appcontainers";
import type { Logger } from "pino";
import type { AzureLauncherConfig } from "../config.js";
import { azureStatusOf, launchErrorFromAzure, type AzureTarget } from "./azure-errors.js";
import type { LaunchExit } from "./launcher.js";
import { WatchedLaunch, type WatchFailure } from "./watched-launch.js";

/** Longest one status read or stop request may take. */
const CALL_TIMEOUT_MS = 30_000;

export interface AzureExecutionDeps {
  client: ContainerAppsAPIClient;
  config: AzureLauncherConfig;
  target: AzureTarget;
}

/** Statuses of an execution that still runs (or is about to). */
export function isActiveStatus(status: string | undefined): boolean {
  return status === "Running" || status === "Processing";
}

function isEndStatus(status: string | undefined): boolean {
  return status === "Succeeded" || status === "Failed" || status === "Stopped";
}

/** One job execution running one worker, watched until it dials back (WatchedLaunch). */
export class AzureJobExecution extends WatchedLaunch {
  constructor(
    launchId: string,
    readonly executionName: string,
    private readonly deps: AzureExecutionDeps,
    logger: Logger,
  ) {
    super(launchId, logger, deps.config.pollIntervalMs, {
      started: "job execution started",
      ended: "job execution ended",
      joined: "worker dialed back; no longer polling the execution",
      readFailed: "could not read the job execution's status",
    });
  }

  protected async stopLaunch(reason: string): Promise<void> {
    if (this.state === "exited") return;
    this.state = "stopping";
    this.clearTimer();
    this.logger.info({ reason }, "stopping job execution");
    if (await stopExecutionTolerant(this.deps, this.executionName, this.logger)) {
      this.settle({ code: null, signal: null, reason: `Azure job execution ${this.executionName} was stopped (${reason})`, stderrTail: [] });
    }
  }

  protected async look(): Promise<LaunchExit | undefined> {
    const { client, config } = this.deps;
    try {
      const execution = await client.jobExecution(config.resourceGroup, config.jobName, this.executionName, { abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
      return isEndStatus(execution.status) ? exitOf(this.executionName, execution) : undefined;
    } catch (error) {
      if (azureStatusOf(error) === 404) return { code: null, signal: null, reason: `Azure job execution ${this.executionName} no longer exists`, stderrTail: [] };
      throw error;
    }
  }

  protected describeFailure(error: unknown): WatchFailure {
    return launchErrorFromAzure(error, "read the executions of", this.deps.target);
  }
}

/**
 * Stops an execution; true once it is stopped or already over (404, or an end
 * status after a refused stop). False (logged) when it may still be running.
 */
export async function stopExecutionTolerant(deps: AzureExecutionDeps, name: string, logger: Logger): Promise<boolean> {
  const { client, config } = deps;
  try {
    await client.jobs.stopExecution(config.resourceGroup, config.jobName, name, {
      updateIntervalInMs: config.pollIntervalMs,
      abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    return true;
  } catch (error) {
    if (azureStatusOf(error) === 404) return true;
    // Azure may refuse to stop an execution that already ended: that is a stop too.
    try {
      const execution = await client.jobExecution(config.resourceGroup, config.jobName, name, { abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
      if (!isActiveStatus(execution.status)) return true;
    } catch (readError) {
      if (azureStatusOf(readError) === 404) return true;
    }
    const mapped = launchErrorFromAzure(error, `stop execution ${name} of`, deps.target);
    logger.warn({ code: mapped.code, err: error, hint: mapped.hint }, "could not stop the job execution; the next orchestrator start stops it");
    return false;
  }
}

/** "Azure job execution tether-worker-abc1234 Failed: <reason, message, container details>". */
function exitOf(name: string, execution: JobExecution): LaunchExit {
  const details = new Set<string>();
  for (const text of [execution.reason, execution.message]) if (text?.trim()) details.add(text.trim());
  let code: number | null = execution.status === "Succeeded" ? 0 : null;
  for (const replica of execution.detailedStatus?.replicas ?? []) {
    for (const container of replica.containers ?? []) {
      if (typeof container.code === "number" && container.code !== 0) code ??= container.code;
      const info = [container.status, container.additionalInformation].filter((part) => part?.trim()).join(": ");
      if (info) details.add(`${container.name ?? "container"}: ${info}`);
    }
  }
  const detail = [...details].join("; ");
  return { code, signal: null, reason: `Azure job execution ${name} ${execution.status ?? "ended"}${detail ? `: ${detail}` : ""}`, stderrTail: [] };
}
