import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import type { KubernetesLauncherConfig } from "../config-kubernetes.js";
import { buildJoinSecret, buildWorkerJob, workerJobNames } from "./kubernetes-job-spec.js";

function kubernetesConfig(env: Record<string, string> = {}): KubernetesLauncherConfig {
  const config = loadConfig({ TETHER_LAUNCHER: "kubernetes", TETHER_K8S_WORKER_IMAGE: "img:1", TETHER_PUBLIC_URL: "ws://tether:8080", ...env }).kubernetes;
  if (!config) throw new Error("no kubernetes config");
  return config;
}

const request = {
  launchId: "lch_0123456789abcdef0123456789abcdef",
  sessionId: null,
  orchestratorUrl: "ws://tether:8080/v1/workers/connect",
  joinToken: "secret-join-token",
  env: { TETHER_LOG_LEVEL: "info", TETHER_JOIN_TOKEN: "must-not-pass", HOME: "/root" },
};

describe("buildWorkerJob", () => {
  it("names the Job and Secret after the launch, within Kubernetes' limits", () => {
    expect(workerJobNames(request.launchId)).toEqual({ job: "tether-lch-0123456789abcdef0123456789abcdef", secret: "tether-lch-0123456789abcdef0123456789abcdef-join" });
    const long = workerJobNames(`LCH_${"x".repeat(80)}`);
    expect(long.job.length).toBeLessThanOrEqual(52);
    expect(long.job).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it("puts the GPU limit, its toleration, the node selector, pull secret, service account and deadline in the pod spec", () => {
    const job = buildWorkerJob(
      kubernetesConfig({
        TETHER_K8S_GPU: "2",
        TETHER_K8S_NODE_SELECTOR: "tether.dev/pool=gpu",
        TETHER_K8S_IMAGE_PULL_SECRET: "acr-pull",
        TETHER_K8S_SERVICE_ACCOUNT: "tether-worker",
        TETHER_K8S_ACTIVE_DEADLINE_S: "90000",
      }),
      "tether",
      request,
    );
    const pod = job.spec?.template.spec;
    expect(pod?.containers[0]?.resources?.limits).toEqual({ cpu: "1", memory: "1Gi", "nvidia.com/gpu": "2" });
    expect(pod?.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(pod?.nodeSelector).toEqual({ "tether.dev/pool": "gpu" });
    expect(pod?.imagePullSecrets).toEqual([{ name: "acr-pull" }]);
    expect(pod?.serviceAccountName).toBe("tether-worker");
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(job.spec?.activeDeadlineSeconds).toBe(90000);
    expect(job.metadata?.labels?.["tether.dev/session-id"]).toBeUndefined();
  });

  it("leaves GPU, tolerations and selectors out by default, and never passes a join token or HOME through env", () => {
    const job = buildWorkerJob(kubernetesConfig(), "tether", request);
    const pod = job.spec?.template.spec;
    expect(pod?.tolerations).toBeUndefined();
    expect(pod?.nodeSelector).toBeUndefined();
    expect(pod?.serviceAccountName).toBeUndefined();
    const env = pod?.containers[0]?.env ?? [];
    expect(env.filter((variable) => variable.name === "HOME")).toEqual([{ name: "HOME", value: "/tmp" }]);
    expect(env.some((variable) => variable.name === "TETHER_JOIN_TOKEN" || variable.value === "must-not-pass" || variable.value === request.joinToken)).toBe(false);
    expect(env).toContainEqual({ name: "TETHER_LOG_LEVEL", value: "info" });
  });

  it("builds the join Secret owned by the Job, without blocking the Job's deletion", () => {
    const secret = buildJoinSecret(kubernetesConfig(), "tether", request, "uid-1");
    expect(secret.metadata?.ownerReferences).toEqual([
      { apiVersion: "batch/v1", kind: "Job", name: "tether-lch-0123456789abcdef0123456789abcdef", uid: "uid-1", controller: false, blockOwnerDeletion: false },
    ]);
    expect(Buffer.from(secret.data?.["join-token"] ?? "", "base64").toString()).toBe("secret-join-token");
    expect(secret.immutable).toBe(true);
  });
});
