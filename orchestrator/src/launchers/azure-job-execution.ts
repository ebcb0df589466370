import type { ContainerAppsAPIClient, JobExecution } from "@azure/arm-appcontainers";
import type { Logger } from "pino";
import type { AzureLauncherConfig } from "../config.js";
import { azureStatusOf, launchErrorFromAzure, type AzureTarget } from "./azure-errors.js";
import type { LaunchExit, LaunchHandle } from "./launcher.js";

/** Longest one status read or stop request may take. */
const CALL_TIMEOUT_MS = 30_000;

export interface AzureExecutionDeps {
  client: ContainerAppsAPIClient;
  config: AzureLauncherConfig;
  target: AzureTarget;
}

/** `watching` until the worker dials back, then `joined`; `stopping` once asked to stop; `exited` when known gone. */
type AzureExecutionState = "watching" | "joined" | "stopping" | "exited";

/** Statuses of an execution that still runs (or is about to). */
export function isActiveStatus(status: string | undefined): boolean {
  return status === "Running" || status === "Processing";
}

function isEndStatus(status: string | undefined): boolean {
  return status === "Succeeded" || status === "Failed" || status === "Stopped";
}

/**
 * One job execution running one worker. Until the worker dials back it polls
 * the execution every `pollIntervalMs`, so an execution that fails first
 * (bad image, crash at start, quota) settles `exited` with Azure's reason
 * within one interval instead of leaving the session to time out.
 */
export class AzureJobExecution implements LaunchHandle {
  readonly exited: Promise<LaunchExit>;
  private state: AzureExecutionState = "watching";
  private settle!: (exit: LaunchExit) => void;
  private timer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private lastPollError: string | undefined;

  constructor(
    readonly launchId: string,
    readonly executionName: string,
    private readonly deps: AzureExecutionDeps,
    private readonly logger: Logger,
  ) {
    this.exited = new Promise<LaunchExit>((resolve) => {
      this.settle = (exit) => {
        if (this.state === "exited") return;
        this.state = "exited";
        this.clearTimer();
        this.logger.info({ code: exit.code, reason: exit.reason }, "job execution ended");
        resolve(exit);
      };
    });
    this.logger.info("job execution started");
  }

  /** Starts polling the execution's status. */
  watch(): void {
    this.schedulePoll();
  }

  joined(): void {
    if (this.state !== "watching") return;
    this.state = "joined";
    this.clearTimer();
    this.logger.debug("worker dialed back; no longer polling the execution");
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    if (this.state === "exited") return;
    this.state = "stopping";
    this.clearTimer();
    this.logger.info({ reason }, "stopping job execution");
    if (await stopExecutionTolerant(this.deps, this.executionName, this.logger)) {
      this.settle({ code: null, signal: null, reason: `Azure job execution ${this.executionName} was stopped (${reason})`, stderrTail: [] });
    }
  }

  private schedulePoll(): void {
    if (this.state !== "watching") return;
    this.timer = setTimeout(() => void this.poll(), this.deps.config.pollIntervalMs);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    const { client, config } = this.deps;
    try {
      const execution = await client.jobExecution(config.resourceGroup, config.jobName, this.executionName, {
        abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      this.lastPollError = undefined;
      if (isEndStatus(execution.status) && this.state !== "exited") {
        this.settle(exitOf(this.executionName, execution));
        return;
      }
    } catch (error) {
      if (azureStatusOf(error) === 404) {
        this.settle({ code: null, signal: null, reason: `Azure job execution ${this.executionName} no longer exists`, stderrTail: [] });
        return;
      }
      // Keep polling through transient failures; say so once per distinct error.
      const mapped = launchErrorFromAzure(error, "read the executions of", this.deps.target);
      if (mapped.message !== this.lastPollError) this.logger.warn({ code: mapped.code, err: error, hint: mapped.hint }, "could not read the job execution's status");
      this.lastPollError = mapped.message;
    }
    this.schedulePoll();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
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
