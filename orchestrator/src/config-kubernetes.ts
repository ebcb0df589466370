import type { WorkerProfile } from "./config-profiles.js";
import { configInvalid } from "./errors.js";

type Env = Readonly<Record<string, string | undefined>>;

/**
 * What one worker pod gets: TETHER_K8S_* here, and a session's worker
 * profile (TETHER_PROFILES) applied over it at launch (podProfileFor in
 * launchers/kubernetes-job-spec.ts).
 */
export interface KubernetesPodProfile {
  /** TETHER_K8S_CPU_REQUEST, default `500m`. */
  cpuRequest: string;
  /** TETHER_K8S_CPU_LIMIT, default `1`. */
  cpuLimit: string;
  /** TETHER_K8S_MEMORY_REQUEST, default `1Gi`. */
  memoryRequest: string;
  /** TETHER_K8S_MEMORY_LIMIT, default `1Gi`. */
  memoryLimit: string;
  /** TETHER_K8S_GPU: GPUs per worker (a limit on `gpuResource`), default 0. */
  gpu: number;
  /** TETHER_K8S_GPU_RESOURCE: the extended resource GPUs are counted in, default `nvidia.com/gpu`. */
  gpuResource: string;
  /** TETHER_K8S_NODE_SELECTOR `key=value,key=value`: nodes worker pods may run on, default none. */
  nodeSelector: Readonly<Record<string, string>>;
  /** TETHER_K8S_WORKSPACE_SIZE: sizeLimit of the workspace emptyDir, default `10Gi`. */
  workspaceSizeLimit: string;
}

/** Where and how the `kubernetes` launcher runs worker Jobs. */
export interface KubernetesLauncherConfig {
  /** TETHER_K8S_KUBECONFIG: a kubeconfig file; unset: $KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig: string | undefined;
  /** TETHER_K8S_NAMESPACE: namespace of the Jobs and Secrets; unset: the kubeconfig context's (in-cluster: the orchestrator's own), else `default`. */
  namespace: string | undefined;
  /** TETHER_K8S_WORKER_IMAGE: the worker image, required. */
  workerImage: string;
  /** TETHER_K8S_IMAGE_PULL_SECRET: name of a docker-registry Secret in the namespace, default none. */
  imagePullSecret: string | undefined;
  /** TETHER_K8S_SERVICE_ACCOUNT: the worker pods' service account (its token is never mounted), default the namespace's `default`. */
  serviceAccount: string | undefined;
  /** TETHER_K8S_ORCHESTRATOR_ID: label value marking this orchestrator's Jobs (reconcile deletes the unowned ones), default `tether`. */
  orchestratorId: string;
  /** TETHER_K8S_TTL_S: ttlSecondsAfterFinished of each Job, default 300. */
  ttlSecondsAfterFinished: number;
  /** TETHER_K8S_ACTIVE_DEADLINE_S: activeDeadlineSeconds of each Job (a backstop), default none. */
  activeDeadlineS: number | undefined;
  /** TETHER_K8S_RUN_AS_USER: uid (and gid, fsGroup) of the worker, default 1000 (`node` in infra/worker.Dockerfile). */
  runAsUser: number;
  /** TETHER_K8S_POLL_INTERVAL_MS: how often a pod that has not dialed back is checked, default 1000. */
  pollIntervalMs: number;
  /** The pod resources and placement of a worker whose profile sets none. */
  profile: KubernetesPodProfile;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** A Kubernetes resource quantity: decimal with an SI or binary suffix (no exponents, which nobody writes here). */
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const SUFFIX_FACTOR: Readonly<Record<string, number>> = {
  "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** TETHER_K8S_* for the kubernetes launcher; names every missing variable at once. */
export function readKubernetesConfig(env: Env, publicUrl: string | undefined): KubernetesLauncherConfig {
  const missing: string[] = [];
  if (!env.TETHER_K8S_WORKER_IMAGE?.trim()) missing.push("TETHER_K8S_WORKER_IMAGE");
  if (!publicUrl) missing.push("TETHER_PUBLIC_URL");
  if (missing.length > 0) {
    throw configInvalid(
      `TETHER_LAUNCHER=kubernetes needs ${missing.join(", ")}.`,
      "TETHER_PUBLIC_URL is the ws:// or wss:// URL worker pods dial back to, e.g. ws://tether.<namespace>.svc.cluster.local:8080.",
    );
  }
  const namespace = optional(env, "TETHER_K8S_NAMESPACE");
  if (namespace !== undefined) dnsLabel("TETHER_K8S_NAMESPACE", namespace);
  const orchestratorId = optional(env, "TETHER_K8S_ORCHESTRATOR_ID") ?? "tether";
  if (orchestratorId.length > 63 || !LABEL_VALUE.test(orchestratorId)) {
    throw configInvalid(`TETHER_K8S_ORCHESTRATOR_ID must be a label value (letters, digits, '-', '_', '.', at most 63), got '${orchestratorId}'.`);
  }
  const imagePullSecret = optional(env, "TETHER_K8S_IMAGE_PULL_SECRET");
  if (imagePullSecret !== undefined) dnsSubdomain("TETHER_K8S_IMAGE_PULL_SECRET", imagePullSecret);
  const serviceAccount = optional(env, "TETHER_K8S_SERVICE_ACCOUNT");
  if (serviceAccount !== undefined) dnsSubdomain("TETHER_K8S_SERVICE_ACCOUNT", serviceAccount);
  const deadline = optional(env, "TETHER_K8S_ACTIVE_DEADLINE_S");
  return {
    kubeconfig: optional(env, "TETHER_K8S_KUBECONFIG"),
    namespace,
    workerImage: env.TETHER_K8S_WORKER_IMAGE?.trim() ?? "",
    imagePullSecret,
    serviceAccount,
    orchestratorId,
    ttlSecondsAfterFinished: integer(env, "TETHER_K8S_TTL_S", 300, 0),
    activeDeadlineS: deadline === undefined ? undefined : integer(env, "TETHER_K8S_ACTIVE_DEADLINE_S", 0, 1),
    runAsUser: integer(env, "TETHER_K8S_RUN_AS_USER", 1000, 1),
    pollIntervalMs: integer(env, "TETHER_K8S_POLL_INTERVAL_MS", 1000, 50),
    profile: readProfile(env),
  };
}

function readProfile(env: Env): KubernetesPodProfile {
  const cpuRequest = quantity(env, "TETHER_K8S_CPU_REQUEST", "500m");
  const cpuLimit = quantity(env, "TETHER_K8S_CPU_LIMIT", "1");
  const memoryRequest = quantity(env, "TETHER_K8S_MEMORY_REQUEST", "1Gi");
  const memoryLimit = quantity(env, "TETHER_K8S_MEMORY_LIMIT", "1Gi");
  // Kubernetes refuses every Job whose request exceeds its limit (422): say so once, here.
  for (const [request, limit, what] of [[cpuRequest, cpuLimit, "CPU"], [memoryRequest, memoryLimit, "MEMORY"]] as const) {
    if (quantityValue(request) > quantityValue(limit)) {
      throw configInvalid(`TETHER_K8S_${what}_REQUEST (${request}) is above TETHER_K8S_${what}_LIMIT (${limit}).`);
    }
  }
  const gpuResource = optional(env, "TETHER_K8S_GPU_RESOURCE") ?? "nvidia.com/gpu";
  if (!LABEL_KEY.test(gpuResource) || !gpuResource.includes("/")) {
    throw configInvalid(`TETHER_K8S_GPU_RESOURCE must be an extended resource name like 'nvidia.com/gpu', got '${gpuResource}'.`);
  }
  return {
    cpuRequest,
    cpuLimit,
    memoryRequest,
    memoryLimit,
    gpu: integer(env, "TETHER_K8S_GPU", 0, 0, 64),
    gpuResource,
    nodeSelector: parseNodeSelector(optional(env, "TETHER_K8S_NODE_SELECTOR")),
    workspaceSizeLimit: quantity(env, "TETHER_K8S_WORKSPACE_SIZE", "10Gi"),
  };
}

/** What only Kubernetes can check in TETHER_PROFILES: node selectors are label pairs. */
export function checkKubernetesProfiles(profiles: Iterable<WorkerProfile>): void {
  for (const profile of profiles) {
    for (const [key, value] of Object.entries(profile.nodeSelector ?? {})) {
      if (!LABEL_KEY.test(key) || key.length > 317 || value.length > 63 || !LABEL_VALUE.test(value)) {
        throw configInvalid(`TETHER_PROFILES: '${profile.name}.nodeSelector' entry '${key}: ${value}' is not a Kubernetes label key and value.`);
      }
    }
  }
}

/** `key=value,key=value` with Kubernetes label syntax on both sides. */
export function parseNodeSelector(raw: string | undefined): Record<string, string> {
  const selector: Record<string, string> = {};
  if (!raw) return selector;
  for (const item of raw.split(",")) {
    const part = item.trim();
    if (!part) continue;
    const equals = part.indexOf("=");
    const key = equals > 0 ? part.slice(0, equals).trim() : "";
    const value = equals > 0 ? part.slice(equals + 1).trim() : "";
    if (!LABEL_KEY.test(key) || key.length > 317 || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw configInvalid(`TETHER_K8S_NODE_SELECTOR entry '${part}' is not 'label-key=label-value'.`, "Example: TETHER_K8S_NODE_SELECTOR=kubernetes.io/os=linux,tether.dev/pool=gpu");
    }
    selector[key] = value;
  }
  return selector;
}

/** The number a quantity stands for (cores or bytes), for comparing requests with limits. */
export function quantityValue(raw: string): number {
  const match = QUANTITY.exec(raw);
  if (!match) return Number.NaN;
  return Number(match[1]) * (SUFFIX_FACTOR[match[3] ?? ""] ?? Number.NaN);
}

function optional(env: Env, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

function quantity(env: Env, name: string, fallback: string): string {
  const value = optional(env, name) ?? fallback;
  if (!QUANTITY.test(value) || !(quantityValue(value) > 0)) {
    throw configInvalid(`${name} must be a positive Kubernetes quantity (e.g. 500m, 2, 1Gi, 512Mi), got '${value}'.`);
  }
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw configInvalid(`${name} must be a whole number, got '${raw}'.`);
  const value = Number(raw);
  if (value < min || value > max) throw configInvalid(`${name} must be between ${min} and ${max}, got ${value}.`);
  return value;
}

function dnsLabel(name: string, value: string): void {
  if (value.length > 63 || !DNS_LABEL.test(value)) throw configInvalid(`${name} must be a DNS label (lowercase letters, digits, '-'), got '${value}'.`);
}

function dnsSubdomain(name: string, value: string): void {
  if (value.length > 253 || !value.split(".").every((part) => DNS_LABEL.test(part))) {
    throw configInvalid(`${name} must be a Kubernetes object name (lowercase letters, digits, '-', '.'), got '${value}'.`);
  }
}
