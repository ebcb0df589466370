import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { parseNodeSelector, quantityValue } from "./config-kubernetes.js";
import { ErrorCodes, TetherError } from "./errors.js";

const base = { TETHER_LAUNCHER: "kubernetes", TETHER_K8S_WORKER_IMAGE: "registry.example.com/tether-worker:1", TETHER_PUBLIC_URL: "ws://tether.tether.svc.cluster.local:8080" };

function configError(env: Record<string, string>): TetherError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof TetherError) return error;
    throw error;
  }
  throw new Error("loadConfig accepted the environment");
}

describe("the kubernetes launcher's configuration", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig(base);
    expect(config.launcher).toBe("kubernetes");
    expect(config.startTimeoutMs).toBe(180_000);
    expect(config.kubernetes).toEqual({
      kubeconfig: undefined,
      namespace: undefined,
      workerImage: "registry.example.com/tether-worker:1",
      imagePullSecret: undefined,
      serviceAccount: undefined,
      orchestratorId: "tether",
      ttlSecondsAfterFinished: 300,
      activeDeadlineS: undefined,
      runAsUser: 1000,
      pollIntervalMs: 1000,
      profile: { cpuRequest: "500m", cpuLimit: "1", memoryRequest: "1Gi", memoryLimit: "1Gi", gpu: 0, gpuResource: "nvidia.com/gpu", nodeSelector: {}, workspaceSizeLimit: "10Gi" },
    });
    expect(loadConfig({}).kubernetes).toBeUndefined();
  });

  it("names every missing variable at once; ws:// is accepted (in-cluster Service URLs)", () => {
    const error = configError({ TETHER_LAUNCHER: "kubernetes" });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.message).toContain("TETHER_K8S_WORKER_IMAGE");
    expect(error.message).toContain("TETHER_PUBLIC_URL");
  });

  it("reads a GPU profile with a node selector", () => {
    const config = loadConfig({ ...base, TETHER_K8S_GPU: "1", TETHER_K8S_NODE_SELECTOR: "cloud.google.com/gke-accelerator=nvidia-l4, tether.dev/pool=gpu", TETHER_K8S_MEMORY_LIMIT: "16Gi", TETHER_K8S_MEMORY_REQUEST: "8Gi" });
    expect(config.kubernetes?.profile).toMatchObject({ gpu: 1, memoryRequest: "8Gi", memoryLimit: "16Gi", nodeSelector: { "cloud.google.com/gke-accelerator": "nvidia-l4", "tether.dev/pool": "gpu" } });
  });

  it("refuses a request above its limit, bad quantities, names and selectors, naming the variable", () => {
    expect(configError({ ...base, TETHER_K8S_CPU_REQUEST: "2", TETHER_K8S_CPU_LIMIT: "1500m" }).message).toContain("TETHER_K8S_CPU_REQUEST (2) is above TETHER_K8S_CPU_LIMIT (1500m)");
    expect(configError({ ...base, TETHER_K8S_MEMORY_REQUEST: "2Gi" }).message).toContain("TETHER_K8S_MEMORY_REQUEST");
    expect(configError({ ...base, TETHER_K8S_MEMORY_LIMIT: "1GB" }).message).toContain("TETHER_K8S_MEMORY_LIMIT");
    expect(configError({ ...base, TETHER_K8S_NAMESPACE: "Tether_NS" }).message).toContain("TETHER_K8S_NAMESPACE");
    expect(configError({ ...base, TETHER_K8S_NODE_SELECTOR: "gpu" }).message).toContain("TETHER_K8S_NODE_SELECTOR");
    expect(configError({ ...base, TETHER_K8S_ORCHESTRATOR_ID: "has space" }).message).toContain("TETHER_K8S_ORCHESTRATOR_ID");
    expect(configError({ ...base, TETHER_K8S_GPU_RESOURCE: "gpu" }).message).toContain("TETHER_K8S_GPU_RESOURCE");
    expect(configError({ ...base, TETHER_K8S_POLL_INTERVAL_MS: "10" }).message).toContain("TETHER_K8S_POLL_INTERVAL_MS");
  });

  it("compares quantities across suffixes", () => {
    expect(quantityValue("500m")).toBe(0.5);
    expect(quantityValue("1Gi")).toBe(1024 ** 3);
    expect(quantityValue("1G")).toBeLessThan(quantityValue("1Gi"));
    expect(quantityValue("1e3")).toBeNaN();
    expect(parseNodeSelector(undefined)).toEqual({});
  });
});
