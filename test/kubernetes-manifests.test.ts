import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { buildWorkerJob, loadConfig } from "@tether/orchestrator";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const manifestsDir = join(repoRoot, "infra/kubernetes");
const NAMESPACE = "tether";

type Manifest = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; [key: string]: unknown };
type EnvVar = { name: string; value?: string; valueFrom?: unknown };
type Container = { name: string; image?: string; env?: EnvVar[]; ports?: { name?: string; containerPort: number }[]; securityContext?: Record<string, unknown>; args?: string[] };
type PodTemplate = { metadata: { labels: Record<string, string> }; spec: { serviceAccountName?: string; securityContext?: Record<string, unknown>; containers: Container[] } };

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? yamlFiles(join(dir, entry.name)) : /\.ya?ml$/.test(entry.name) ? [join(dir, entry.name)] : [],
  );
}

/** Every document of every file, parsed strictly (a YAML error fails the test with its file). */
function load(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, "utf8")).map((document) => {
    if (document.errors.length > 0) throw new Error(`${relative(repoRoot, file)}: ${document.errors.map((e) => e.message).join("; ")}`);
    return document.toJS() as Manifest;
  });
}

const files = yamlFiles(manifestsDir);
const base = yamlFiles(join(manifestsDir, "base")).flatMap(load).filter((m) => m.kind !== "Kustomization");
const find = <T = Manifest>(kind: string, name: string): T => {
  const found = base.find((m) => m.kind === kind && m.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in infra/kubernetes/base`);
  return found as T;
};
const deployment = find<Manifest & { spec: { replicas: number; strategy: { type: string }; template: PodTemplate } }>("Deployment", "tether-orchestrator");
const orchestratorContainer = deployment.spec.template.spec.containers[0] as Container;

/** The Deployment's env as the orchestrator would see it (Secret and field references filled with samples). */
function deploymentEnv(extra: EnvVar[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of [...(orchestratorContainer.env ?? []), ...extra]) {
    env[variable.name] = variable.value ?? (variable.name === "TETHER_API_KEYS" ? "alice:sample-key" : variable.name === "TETHER_K8S_NAMESPACE" ? NAMESPACE : "");
  }
  return env;
}

const API_VERSIONS: Record<string, string> = {
  Namespace: "v1",
  ServiceAccount: "v1",
  Service: "v1",
  Role: "rbac.authorization.k8s.io/v1",
  RoleBinding: "rbac.authorization.k8s.io/v1",
  Deployment: "apps/v1",
  StatefulSet: "apps/v1",
  NetworkPolicy: "networking.k8s.io/v1",
  Kustomization: "kustomize.config.k8s.io/v1beta1",
};

describe("the Kubernetes manifests in infra/kubernetes", () => {
  it("parse, and every object has a known kind with its apiVersion, a name, and the tether namespace", () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const file of files) {
      for (const manifest of load(file)) {
        const where = `${relative(repoRoot, file)} ${manifest.kind ?? "?"}`;
        expect(API_VERSIONS[manifest.kind ?? ""], where).toBeDefined();
        expect(manifest.apiVersion, where).toBe(API_VERSIONS[manifest.kind ?? ""]);
        if (manifest.kind === "Kustomization") continue;
        expect(manifest.metadata?.name, where).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        if (manifest.kind === "Namespace") expect(manifest.metadata?.name).toBe(NAMESPACE);
        else expect(manifest.metadata?.namespace, where).toBe(NAMESPACE);
      }
    }
  });

  it("list every base file in the base kustomization, and the GPU overlay builds on it", () => {
    const [kustomization] = load(join(manifestsDir, "base/kustomization.yaml")) as [{ resources: string[] }];
    const baseFiles = yamlFiles(join(manifestsDir, "base")).map((file) => relative(join(manifestsDir, "base"), file)).filter((file) => file !== "kustomization.yaml");
    expect([...kustomization.resources].sort()).toEqual(baseFiles.sort());
    const [gpu] = load(join(manifestsDir, "gpu/kustomization.yaml")) as [{ resources: string[]; patches: { path: string }[] }];
    expect(gpu.resources).toEqual(["../base"]);
    expect(gpu.patches.map((patch) => patch.path)).toEqual(["worker-profile-gpu.yaml"]);
  });

  it("give the orchestrator a namespaced Role limited to what the launcher calls, bound to its service account", () => {
    expect(base.filter((m) => m.kind === "ClusterRole" || m.kind === "ClusterRoleBinding")).toEqual([]);
    const role = find<{ rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }>("Role", "tether-orchestrator");
    const granted = role.rules.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.flatMap((resource) => rule.verbs.map((verb) => `${group || "core"}/${resource}:${verb}`))));
    expect(granted.sort()).toEqual(
      [
        "batch/jobs:create", "batch/jobs:get", "batch/jobs:list", "batch/jobs:delete",
        "core/pods:get", "core/pods:list", "core/pods/log:get",
        "core/secrets:create", "core/secrets:delete",
        "core/events:list",
      ].sort(),
    );
    const binding = find<{ roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] }>("RoleBinding", "tether-orchestrator");
    expect(binding.roleRef).toMatchObject({ kind: "Role", name: "tether-orchestrator" });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: deployment.spec.template.spec.serviceAccountName, namespace: NAMESPACE }]);
    find("ServiceAccount", deployment.spec.template.spec.serviceAccountName ?? "");
  });

  it("run one orchestrator replica, replaced with Recreate (two would delete each other's workers at reconcile)", () => {
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe("Recreate");
  });

  it("set only orchestrator env names that config.ts reads, and a configuration it accepts", () => {
    const sources = ["orchestrator/src/config.ts", "orchestrator/src/config-kubernetes.ts"].map((file) => readFileSync(join(repoRoot, file), "utf8")).join("\n");
    const [gpuPatch] = load(join(manifestsDir, "gpu/worker-profile-gpu.yaml")) as [{ spec: { template: PodTemplate } }];
    const gpuEnv = gpuPatch.spec.template.spec.containers[0]?.env ?? [];
    // Read as env.NAME or through a helper taking "NAME".
    for (const { name } of [...(orchestratorContainer.env ?? []), ...gpuEnv]) expect(sources, name).toMatch(new RegExp(`(env\\.|")${name}\\b`));
    const config = loadConfig(deploymentEnv());
    expect(config.launcher).toBe("kubernetes");
    expect(config.kubernetes?.serviceAccount).toBe("tether-worker");
    expect(config.python).toBeUndefined();
    // The worker service account exists and never mounts a token.
    expect(find<{ automountServiceAccountToken: boolean }>("ServiceAccount", "tether-worker").automountServiceAccountToken).toBe(false);
  });

  it("point TETHER_PUBLIC_URL at the orchestrator Service, whose selector and port reach the orchestrator pod", () => {
    const service = find<{ spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } }>("Service", "tether");
    const publicUrl = new URL(deploymentEnv().TETHER_PUBLIC_URL ?? "");
    expect(publicUrl.hostname).toBe(`tether.${NAMESPACE}.svc.cluster.local`);
    expect(service.spec.ports.map((port) => port.port)).toContain(Number(publicUrl.port));
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const http = orchestratorContainer.ports?.find((port) => port.name === service.spec.ports[0]?.targetPort);
    expect(http?.containerPort).toBe(Number(deploymentEnv().TETHER_PORT));
  });

  it("deny worker pods all ingress and all egress but the orchestrator's port and DNS, selecting them by the launcher's labels", () => {
    const policy = find<{
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: unknown[];
        egress: { to: { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: { matchLabels: Record<string, string> } }[]; ports: { protocol: string; port: number }[] }[];
      };
    }>("NetworkPolicy", "tether-worker");
    const config = loadConfig(deploymentEnv()).kubernetes;
    if (!config) throw new Error("no kubernetes config");
    const job = buildWorkerJob(config, NAMESPACE, { launchId: "lch_1", sessionId: "ses_1", orchestratorUrl: "ws://x/v1/workers/connect", joinToken: "t", env: {} });
    expect(job.spec?.template.metadata?.labels).toMatchObject(policy.spec.podSelector.matchLabels);
    expect(Object.keys(policy.spec.podSelector.matchLabels).length).toBeGreaterThanOrEqual(2);
    // ...and nothing else in the namespace carries them.
    expect(deployment.spec.template.metadata.labels).not.toMatchObject(policy.spec.podSelector.matchLabels);
    expect(policy.spec.policyTypes.sort()).toEqual(["Egress", "Ingress"]);
    expect(policy.spec.ingress).toEqual([]);
    expect(policy.spec.egress).toHaveLength(2);
    const [toOrchestrator, toDns] = policy.spec.egress;
    expect(toOrchestrator?.to).toEqual([{ podSelector: { matchLabels: { "app.kubernetes.io/name": "tether-orchestrator" } } }]);
    expect(deployment.spec.template.metadata.labels).toMatchObject(toOrchestrator?.to[0]?.podSelector?.matchLabels ?? { none: "" });
    expect(toOrchestrator?.ports).toEqual([{ protocol: "TCP", port: Number(deploymentEnv().TETHER_PORT) }]);
    expect(toDns?.to[0]?.namespaceSelector?.matchLabels).toEqual({ "kubernetes.io/metadata.name": "kube-system" });
    expect(toDns?.ports.map((port) => `${port.protocol}/${port.port}`).sort()).toEqual(["TCP/53", "UDP/53"]);
  });

  it("run every container non-root, without privilege escalation or capabilities, on a read-only root filesystem", () => {
    const workloads = base.filter((m) => m.kind === "Deployment" || m.kind === "StatefulSet") as unknown as { metadata: { name: string }; spec: { template: PodTemplate } }[];
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual(["tether-orchestrator", "tether-redis"]);
    for (const workload of workloads) {
      expect(workload.spec.template.spec.securityContext, workload.metadata.name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
      for (const container of workload.spec.template.spec.containers) {
        expect(container.securityContext, container.name).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
      }
    }
  });

  it("keep Redis (scale-out feature) on an append-only file, with the orchestrator's placeholder naming its Service", () => {
    const redis = find<{ spec: { template: PodTemplate } }>("StatefulSet", "tether-redis");
    const args = redis.spec.template.spec.containers[0]?.args ?? [];
    expect(args[args.indexOf("--appendonly") + 1]).toBe("yes");
    find("Service", "tether-redis");
    const orchestratorYaml = readFileSync(join(manifestsDir, "base/orchestrator.yaml"), "utf8");
    expect(orchestratorYaml).toMatch(/#\s+- name: TETHER_REDIS_URL\n\s+#\s+value: redis:\/\/tether-redis\.tether\.svc\.cluster\.local:6379/);
  });

  it("make the GPU worker profile a limit of one nvidia.com/gpu and a node selector on each worker pod", () => {
    const [gpuPatch] = load(join(manifestsDir, "gpu/worker-profile-gpu.yaml")) as [{ metadata: { name: string }; spec: { template: PodTemplate } }];
    expect(gpuPatch.metadata.name).toBe(deployment.metadata?.name);
    const config = loadConfig(deploymentEnv(gpuPatch.spec.template.spec.containers[0]?.env)).kubernetes;
    if (!config) throw new Error("no kubernetes config");
    const pod = buildWorkerJob(config, NAMESPACE, { launchId: "lch_1", sessionId: null, orchestratorUrl: "ws://x/v1/workers/connect", joinToken: "t", env: {} }).spec?.template.spec;
    expect(pod?.containers[0]?.resources?.limits).toMatchObject({ "nvidia.com/gpu": "1" });
    expect(pod?.nodeSelector).toEqual({ "tether.dev/pool": "gpu" });
    expect(pod?.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
  });
});
