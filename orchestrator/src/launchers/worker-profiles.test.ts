import { describe, expect, it } from "vitest";
import { loadConfig, type OrchestratorConfig } from "../config.js";
import type { WorkerProfile } from "../config-profiles.js";
import { azureMemory } from "./azure-aca-jobs.js";
import { buildContainerSpec, DockerLabels } from "./docker-container-spec.js";
import { buildWorkerJob, podProfileFor, WorkerLabels } from "./kubernetes-job-spec.js";
import type { LaunchRequest } from "./launcher.js";

function profileOf(config: OrchestratorConfig, name: string): WorkerProfile {
  const profile = config.profiles.get(name);
  if (!profile) throw new Error(`no profile ${name}`);
  return profile;
}

const baseRequest: LaunchRequest = {
  launchId: "lch_0123456789abcdef0123456789abcdef",
  sessionId: "ses_0123456789abcdef0123456789abcdef",
  orchestratorUrl: "ws://127.0.0.1:8080/v1/workers/connect",
  joinToken: "secret-join-token",
  env: { TETHER_LOG_LEVEL: "info" },
};

const GPU_PROFILE = { image: "registry.test/tether-worker:cuda", cpu: 4, memoryMb: 16384, gpu: 1, nodeSelector: { "tether.dev/pool": "gpu" } };

describe("the docker launcher's container spec", () => {
  const config = loadConfig({ TETHER_LAUNCHER: "docker", TETHER_DATA_DIR: "/srv/tether", TETHER_PROFILES: JSON.stringify({ gpu: { ...GPU_PROFILE, nodeSelector: undefined }, half: { cpu: 0.5 } }) });
  const docker = config.docker;
  if (!docker) throw new Error("no docker config");

  it("uses TETHER_DOCKER_* for a launch without a profile", () => {
    const spec = buildContainerSpec(docker, baseRequest, "ws+unix:/run/tether/orchestrator.sock:/v1/workers/connect", "/srv/tether/docker-relay/lch_x");
    expect(spec.Image).toBe("tether-worker:local");
    expect(spec.HostConfig).toMatchObject({ Memory: 2 * 1024 ** 3, MemorySwap: 2 * 1024 ** 3, NanoCpus: 1e9, PidsLimit: 512, NetworkMode: "none", ReadonlyRootfs: true, CapDrop: ["ALL"] });
    expect(spec.HostConfig?.DeviceRequests).toBeUndefined();
    expect(spec.HostConfig?.Binds).toEqual(["/srv/tether/docker-relay/lch_x:/run/tether:ro"]);
    expect(spec.Labels?.[DockerLabels.profile]).toBeUndefined();
    expect(spec.Env).toEqual(expect.arrayContaining(["TETHER_LOG_LEVEL=info", "TETHER_JOIN_TOKEN_STDIN=1", "TETHER_ORCHESTRATOR_URL=ws+unix:/run/tether/orchestrator.sock:/v1/workers/connect"]));
    expect(JSON.stringify(spec)).not.toContain("secret-join-token");
  });

  it("applies a profile's image, CPUs, memory (swap included) and GPUs, and labels the container with it", () => {
    const spec = buildContainerSpec(docker, { ...baseRequest, profile: profileOf(config, "gpu") }, "ws://x", undefined);
    expect(spec.Image).toBe("registry.test/tether-worker:cuda");
    expect(spec.HostConfig).toMatchObject({ Memory: 16384 * 1024 * 1024, MemorySwap: 16384 * 1024 * 1024, NanoCpus: 4e9, PidsLimit: 512 });
    expect(spec.HostConfig?.DeviceRequests).toEqual([{ Driver: "", Count: 1, DeviceIDs: [], Capabilities: [["gpu"]], Options: {} }]);
    expect(spec.Labels?.[DockerLabels.profile]).toBe("gpu");
    expect(spec.HostConfig?.Binds).toBeUndefined();
  });

  it("keeps the launcher's values for whatever a profile leaves out", () => {
    const spec = buildContainerSpec(docker, { ...baseRequest, profile: profileOf(config, "half") }, "ws://x", undefined);
    expect(spec.Image).toBe("tether-worker:local");
    expect(spec.HostConfig).toMatchObject({ Memory: 2 * 1024 ** 3, NanoCpus: 0.5e9 });
  });
});

describe("the kubernetes launcher's pod profile", () => {
  const config = loadConfig({
    TETHER_LAUNCHER: "kubernetes",
    TETHER_K8S_WORKER_IMAGE: "img:1",
    TETHER_PUBLIC_URL: "ws://tether:8080",
    TETHER_K8S_NODE_SELECTOR: "kubernetes.io/os=linux,tether.dev/pool=cpu",
    TETHER_PROFILES: JSON.stringify({ gpu: GPU_PROFILE, half: { cpu: 0.25, memoryMb: 512 } }),
  });
  const kubernetes = config.kubernetes;
  if (!kubernetes) throw new Error("no kubernetes config");

  it("sets request and limit from cpu and memoryMb, replaces the GPU count and merges the node selector", () => {
    expect(podProfileFor(kubernetes.profile, undefined)).toBe(kubernetes.profile);
    expect(podProfileFor(kubernetes.profile, profileOf(config, "gpu"))).toEqual({
      ...kubernetes.profile,
      cpuRequest: "4",
      cpuLimit: "4",
      memoryRequest: "16384Mi",
      memoryLimit: "16384Mi",
      gpu: 1,
      nodeSelector: { "kubernetes.io/os": "linux", "tether.dev/pool": "gpu" },
    });
    expect(podProfileFor(kubernetes.profile, profileOf(config, "half"))).toMatchObject({ cpuRequest: "250m", cpuLimit: "250m", memoryRequest: "512Mi", gpu: 0 });
  });

  it("builds the Job with the profile's image, GPU limit and toleration, node selector and label", () => {
    const job = buildWorkerJob(kubernetes, "tether", { ...baseRequest, profile: profileOf(config, "gpu") });
    const pod = job.spec?.template.spec;
    const container = pod?.containers[0];
    expect(container?.image).toBe("registry.test/tether-worker:cuda");
    expect(container?.resources).toEqual({ requests: { cpu: "4", memory: "16384Mi" }, limits: { cpu: "4", memory: "16384Mi", "nvidia.com/gpu": "1" } });
    expect(pod?.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(pod?.nodeSelector).toEqual({ "kubernetes.io/os": "linux", "tether.dev/pool": "gpu" });
    expect(job.metadata?.labels?.[WorkerLabels.profile]).toBe("gpu");
    const plain = buildWorkerJob(kubernetes, "tether", baseRequest);
    expect(plain.spec?.template.spec?.containers[0]?.image).toBe("img:1");
    expect(plain.spec?.template.spec?.tolerations).toBeUndefined();
  });
});

describe("the azure launcher's memory", () => {
  it("writes MiB as the Gi fractions Container Apps takes", () => {
    expect(azureMemory(1024)).toBe("1Gi");
    expect(azureMemory(1536)).toBe("1.5Gi");
    expect(azureMemory(16384)).toBe("16Gi");
    expect(azureMemory(512)).toBe("0.5Gi");
  });
});
