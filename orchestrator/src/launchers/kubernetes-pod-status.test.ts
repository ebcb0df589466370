import type { CoreV1Event, V1Job, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { failedCreateMessage, isJobFinished, jobOutcome, podOutcome } from "./kubernetes-pod-status.js";

function pod(status: V1Pod["status"]): V1Pod {
  return { metadata: { name: "tether-lch-1-abcde" }, status };
}

describe("podOutcome", () => {
  it("reads a failed pod's exit code and reason, eviction included", () => {
    expect(
      podOutcome(pod({ phase: "Failed", containerStatuses: [{ name: "worker", image: "i", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 3, reason: "Error" } } }] })),
    ).toEqual({ kind: "ended", code: 3, reason: "Kubernetes pod tether-lch-1-abcde Failed: worker: Error, exit code 3" });
    const evicted = podOutcome(pod({ phase: "Failed", reason: "Evicted", message: "Pod ephemeral local storage usage exceeds the total limit of containers 10Gi." }));
    expect(evicted).toMatchObject({ kind: "ended", code: null });
    expect(evicted.kind === "ended" && evicted.reason).toContain("Evicted: Pod ephemeral local storage usage exceeds");
    expect(podOutcome(pod({ phase: "Succeeded" }))).toMatchObject({ kind: "ended", code: 0 });
  });

  it("fails at once on a container that cannot start, and waits on one being created or unscheduled", () => {
    const waiting = (reason: string) => pod({ phase: "Pending", containerStatuses: [{ name: "worker", image: "i", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason, message: "details" } } }] });
    expect(podOutcome(waiting("ImagePullBackOff"))).toEqual({ kind: "ended", code: null, reason: "Kubernetes pod tether-lch-1-abcde cannot start: worker: ImagePullBackOff: details" });
    expect(podOutcome(waiting("CreateContainerConfigError")).kind).toBe("ended");
    expect(podOutcome(waiting("ContainerCreating"))).toEqual({ kind: "starting" });
    expect(podOutcome(pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu." }] }))).toEqual({
      kind: "starting",
      note: "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    });
    expect(podOutcome(pod({ phase: "Running" }))).toEqual({ kind: "running" });
  });
});

describe("jobOutcome and failedCreateMessage", () => {
  it("ends on a Failed or Complete condition only when it is True", () => {
    const job = (type: string, status: string): V1Job => ({ metadata: { name: "j" }, status: { conditions: [{ type, status, reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" }] } });
    expect(jobOutcome(job("Failed", "True"))).toEqual({ kind: "ended", code: null, reason: "Kubernetes Job j Failed: DeadlineExceeded: Job was active longer than specified deadline" });
    expect(jobOutcome(job("Failed", "False")).kind).toBe("starting");
    expect(isJobFinished(job("Complete", "True"))).toBe(true);
    expect(isJobFinished({ metadata: { name: "j" } })).toBe(false);
  });

  it("picks the latest FailedCreate event of the Job", () => {
    const event = (reason: string, message: string, at: string, name = "j"): CoreV1Event => ({ metadata: {}, involvedObject: { kind: "Job", name }, reason, message, lastTimestamp: new Date(at) });
    const events = [
      event("SuccessfulCreate", "Created pod: j-1", "2026-01-01T00:00:00Z"),
      event("FailedCreate", "Error creating: old", "2026-01-01T00:00:01Z"),
      event("FailedCreate", "Error creating: pods \"j-2\" is forbidden: exceeded quota: q", "2026-01-01T00:00:02Z"),
      event("FailedCreate", "another job's", "2026-01-01T00:00:03Z", "k"),
    ];
    expect(failedCreateMessage("j", events)).toBe('Kubernetes could not create the pod of Job j: Error creating: pods "j-2" is forbidden: exceeded quota: q');
    expect(failedCreateMessage("j", events.slice(0, 1))).toBeUndefined();
  });
});
