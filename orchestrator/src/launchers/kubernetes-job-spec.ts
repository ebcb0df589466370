import type { V1Job, V1Secret, V1Toleration } from "@kubernetes/client-node";
import type { KubernetesLauncherConfig, KubernetesPodProfile } from "../config-kubernetes.js";
import type { WorkerProfile } from "../config-profiles.js";
import type { LaunchRequest } from "./launcher.js";

/** Labels every worker Job and pod carries; reconcile and the NetworkPolicy select on them. */
export const WorkerLabels = {
  name: "app.kubernetes.io/name",
  component: "app.kubernetes.io/component",
  managedBy: "app.kubernetes.io/managed-by",
  orchestrator: "tether.dev/orchestrator",
  launchId: "tether.dev/launch-id",
  sessionId: "tether.dev/session-id",
  profile: "tether.dev/profile",
} as const;

export const MANAGED_BY = "tether";
export const WORKER_CONTAINER = "worker";
/** Where the worker pod sees its workspace; `/mnt/data` is the same emptyDir (DESIGN.md: Isolation). */
export const WORKSPACE_PATH = "/workspace";
export const DATA_PATH = "/mnt/data";
/** The join token Secret's mount; the worker reads TETHER_JOIN_TOKEN_FILE once and tries to remove it. */
export const JOIN_TOKEN_DIR = "/var/run/tether";
export const JOIN_TOKEN_KEY = "join-token";
export const JOIN_TOKEN_FILE = `${JOIN_TOKEN_DIR}/${JOIN_TOKEN_KEY}`;
/** Scratch space and HOME (Jupyter's runtime files): the root filesystem is read-only. */
const TMP_PATH = "/tmp";
const TMP_SIZE_LIMIT = "1Gi";
/** The worker stops Jupyter within 3 s of SIGTERM (docs/internals.md): 10 s is plenty. */
const TERMINATION_GRACE_S = 10;

/** Worker env the launcher sets itself; the same names in `request.env` are ignored. */
const OWN_ENV = new Set(["TETHER_ORCHESTRATOR_URL", "TETHER_JOIN_TOKEN", "TETHER_JOIN_TOKEN_FILE", "TETHER_LAUNCH_ID", "TETHER_WORKSPACE", "HOME"]);

export interface WorkerJobNames {
  job: string;
  secret: string;
}

/** `tether-lch-<hex>` from `lch_<hex>`: a DNS label short enough for the pod names Kubernetes derives from it. */
export function workerJobNames(launchId: string): WorkerJobNames {
  const slug = launchId.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  const job = `tether-${slug}`.slice(0, 52).replace(/-+$/, "");
  return { job, secret: `${job}-join` };
}

/** The label selector of every Job this orchestrator runs. */
export function orchestratorSelector(config: KubernetesLauncherConfig): string {
  return `${WorkerLabels.managedBy}=${MANAGED_BY},${WorkerLabels.orchestrator}=${config.orchestratorId}`;
}

function workerLabels(config: KubernetesLauncherConfig, request: Pick<LaunchRequest, "launchId" | "sessionId" | "profile">): Record<string, string> {
  return {
    [WorkerLabels.name]: "tether-worker",
    [WorkerLabels.component]: "worker",
    [WorkerLabels.managedBy]: MANAGED_BY,
    [WorkerLabels.orchestrator]: config.orchestratorId,
    [WorkerLabels.launchId]: request.launchId,
    ...(request.sessionId ? { [WorkerLabels.sessionId]: request.sessionId } : {}),
    ...(request.profile ? { [WorkerLabels.profile]: request.profile.name } : {}),
  };
}

/**
 * TETHER_K8S_* with a worker profile applied: its cpu and memoryMb set both
 * request and limit (what a profile asks for is what the scheduler reserves),
 * its gpu replaces TETHER_K8S_GPU, its nodeSelector is merged over
 * TETHER_K8S_NODE_SELECTOR (the profile wins on a shared key).
 */
export function podProfileFor(base: KubernetesPodProfile, profile: WorkerProfile | undefined): KubernetesPodProfile {
  if (!profile) return base;
  const cpu = profile.cpu === undefined ? undefined : cpuQuantity(profile.cpu);
  const memory = profile.memoryMb === undefined ? undefined : `${profile.memoryMb}Mi`;
  return {
    ...base,
    ...(cpu ? { cpuRequest: cpu, cpuLimit: cpu } : {}),
    ...(memory ? { memoryRequest: memory, memoryLimit: memory } : {}),
    ...(profile.gpu === undefined ? {} : { gpu: profile.gpu }),
    ...(profile.nodeSelector ? { nodeSelector: { ...base.nodeSelector, ...profile.nodeSelector } } : {}),
  };
}

/** 4 -> "4", 0.5 -> "500m": whole cores as such, the rest in millicores (at least 1m). */
function cpuQuantity(cpus: number): string {
  return Number.isInteger(cpus) ? String(cpus) : `${Math.max(1, Math.round(cpus * 1000))}m`;
}

/**
 * The Job running one worker: one pod, never restarted or retried (a worker
 * that dies is a lost worker, resumed elsewhere by the session), non-root
 * with a read-only root filesystem, no capabilities, no service account
 * token, and the join token only as a file from a Secret, never in the spec.
 */
export function buildWorkerJob(config: KubernetesLauncherConfig, namespace: string, request: LaunchRequest): V1Job {
  const profile = podProfileFor(config.profile, request.profile);
  const names = workerJobNames(request.launchId);
  const labels = workerLabels(config, request);
  const uid = config.runAsUser;
  const limits: Record<string, string> = { cpu: profile.cpuLimit, memory: profile.memoryLimit };
  if (profile.gpu > 0) limits[profile.gpuResource] = String(profile.gpu);
  // GPU node pools are usually tainted with the resource name; tolerating it is harmless elsewhere.
  const tolerations: V1Toleration[] = profile.gpu > 0 ? [{ key: profile.gpuResource, operator: "Exists", effect: "NoSchedule" }] : [];
  const env = [
    ...Object.entries(request.env)
      .filter(([name]) => !OWN_ENV.has(name))
      .map(([name, value]) => ({ name, value })),
    { name: "TETHER_ORCHESTRATOR_URL", value: request.orchestratorUrl },
    { name: "TETHER_LAUNCH_ID", value: request.launchId },
    { name: "TETHER_JOIN_TOKEN_FILE", value: JOIN_TOKEN_FILE },
    { name: "TETHER_WORKSPACE", value: WORKSPACE_PATH },
    { name: "HOME", value: TMP_PATH },
  ];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: names.job, namespace, labels },
    spec: {
      backoffLimit: 0,
      completions: 1,
      parallelism: 1,
      ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
      ...(config.activeDeadlineS === undefined ? {} : { activeDeadlineSeconds: config.activeDeadlineS }),
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          // User code runs here: no API token, no service env vars, nothing to escalate with.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: TERMINATION_GRACE_S,
          ...(config.serviceAccount ? { serviceAccountName: config.serviceAccount } : {}),
          ...(config.imagePullSecret ? { imagePullSecrets: [{ name: config.imagePullSecret }] } : {}),
          ...(Object.keys(profile.nodeSelector).length > 0 ? { nodeSelector: { ...profile.nodeSelector } } : {}),
          ...(tolerations.length > 0 ? { tolerations } : {}),
          securityContext: { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: WORKER_CONTAINER,
              image: request.profile?.image ?? config.workerImage,
              workingDir: WORKSPACE_PATH,
              env,
              resources: { requests: { cpu: profile.cpuRequest, memory: profile.memoryRequest }, limits },
              securityContext: {
                runAsNonRoot: true,
                runAsUser: uid,
                runAsGroup: uid,
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "workspace", mountPath: WORKSPACE_PATH },
                { name: "workspace", mountPath: DATA_PATH },
                { name: "tmp", mountPath: TMP_PATH },
                { name: "join-token", mountPath: JOIN_TOKEN_DIR, readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: "workspace", emptyDir: { sizeLimit: profile.workspaceSizeLimit } },
            { name: "tmp", emptyDir: { sizeLimit: TMP_SIZE_LIMIT } },
            // 0400 plus fsGroup: the kubelet makes it 0440 root:<fsGroup>, readable by the worker's group only.
            { name: "join-token", secret: { secretName: names.secret, defaultMode: 0o400, items: [{ key: JOIN_TOKEN_KEY, path: JOIN_TOKEN_KEY }] } },
          ],
        },
      },
    },
  };
}

/**
 * The per-launch Secret holding the join token, owned by its Job so the
 * garbage collector removes it with the Job (the launcher deletes it sooner:
 * once the worker joined). blockOwnerDeletion stays false: setting it needs
 * `update` on jobs/finalizers, a permission the orchestrator does not need otherwise.
 */
export function buildJoinSecret(config: KubernetesLauncherConfig, namespace: string, request: LaunchRequest, jobUid: string): V1Secret {
  const names = workerJobNames(request.launchId);
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    immutable: true,
    metadata: {
      name: names.secret,
      namespace,
      labels: workerLabels(config, request),
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: names.job, uid: jobUid, controller: false, blockOwnerDeletion: false }],
    },
    data: { [JOIN_TOKEN_KEY]: Buffer.from(request.joinToken, "utf8").toString("base64") },
  };
}
