import type { CoreV1Event, V1Job, V1Pod } from "@kubernetes/client-node";

/** What one look at a worker's Job or pod says, before the worker dialed back. */
export type WorkerPodOutcome =
  | { kind: "starting"; note?: string }
  | { kind: "running" }
  | { kind: "ended"; code: number | null; reason: string };

/**
 * Container waiting reasons that never fix themselves within a start: the
 * image cannot be pulled or the container cannot be created. (ErrImagePull may
 * be a registry blip that a retry would get past, but a session waiting for
 * the start timeout is worse than one failing at once with the reason.)
 */
const FATAL_WAITING_REASONS = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "CrashLoopBackOff",
]);

/** "Kubernetes pod <name> Failed: worker: Error (exit code 1)" and the like. */
export function podOutcome(pod: V1Pod): WorkerPodOutcome {
  const name = pod.metadata?.name ?? "(unnamed)";
  const status = pod.status;
  const phase = status?.phase;
  const statuses = [...(status?.initContainerStatuses ?? []), ...(status?.containerStatuses ?? [])];
  if (phase === "Succeeded" || phase === "Failed") {
    const details: string[] = [];
    if (status?.reason) details.push([status.reason, status.message].filter(Boolean).join(": "));
    let code: number | null = phase === "Succeeded" ? 0 : null;
    for (const container of statuses) {
      const terminated = container.state?.terminated ?? container.lastState?.terminated;
      if (!terminated) continue;
      if (terminated.exitCode !== 0) code ??= terminated.exitCode;
      const what = [terminated.reason, `exit code ${terminated.exitCode}`].filter(Boolean).join(", ");
      details.push(`${container.name}: ${what}${terminated.message ? `: ${terminated.message.trim()}` : ""}`);
    }
    return { kind: "ended", code, reason: `Kubernetes pod ${name} ${phase}${details.length > 0 ? `: ${details.join("; ")}` : ""}` };
  }
  for (const container of statuses) {
    const waiting = container.state?.waiting;
    if (waiting?.reason && FATAL_WAITING_REASONS.has(waiting.reason)) {
      return { kind: "ended", code: null, reason: `Kubernetes pod ${name} cannot start: ${container.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}` };
    }
  }
  if (phase === "Running") return { kind: "running" };
  // Unschedulable is often temporary (a cluster autoscaler adds a node): worth a log line, not a failure.
  const unschedulable = status?.conditions?.find((condition) => condition.type === "PodScheduled" && condition.status === "False");
  if (unschedulable?.message) return { kind: "starting", note: `${unschedulable.reason ?? "Unschedulable"}: ${unschedulable.message}` };
  return { kind: "starting" };
}

/** A Job with a Failed or Complete condition has ended (DeadlineExceeded, BackoffLimitExceeded, ...). */
export function jobOutcome(job: V1Job): WorkerPodOutcome {
  const name = job.metadata?.name ?? "(unnamed)";
  for (const condition of job.status?.conditions ?? []) {
    if (condition.status !== "True") continue;
    if (condition.type === "Failed") {
      return { kind: "ended", code: null, reason: `Kubernetes Job ${name} Failed: ${[condition.reason, condition.message].filter(Boolean).join(": ")}` };
    }
    if (condition.type === "Complete") return { kind: "ended", code: 0, reason: `Kubernetes Job ${name} completed` };
  }
  return { kind: "starting" };
}

/**
 * The job controller could not create the pod (a ResourceQuota, Pod Security
 * admission, a policy engine): it only says so in events, and keeps retrying.
 */
export function failedCreateMessage(jobName: string, events: readonly CoreV1Event[]): string | undefined {
  const failed = events
    .filter((event) => event.reason === "FailedCreate" && event.involvedObject.name === jobName)
    .sort((a, b) => timeOf(b) - timeOf(a))[0];
  return failed?.message ? `Kubernetes could not create the pod of Job ${jobName}: ${failed.message}` : undefined;
}

function timeOf(event: CoreV1Event): number {
  const at = event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp;
  return at ? new Date(at).getTime() : 0;
}

/** Active until it has a terminal condition. */
export function isJobFinished(job: V1Job): boolean {
  return jobOutcome(job).kind === "ended";
}
