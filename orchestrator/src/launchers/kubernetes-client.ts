import { existsSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import type { BatchV1Api, CoreV1Api } from "@kubernetes/client-node";
import type { KubernetesLauncherConfig } from "../config-kubernetes.js";
import { ErrorCodes, errorMessage, tetherError } from "../errors.js";

/** Longest one API call may take (the client has no timeout of its own). */
const CALL_TIMEOUT_MS = 30_000;
/** Where a pod finds its service account token (what loadFromDefault looks for last). */
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The typed APIs the launcher calls, bound to one cluster and namespace. */
export interface KubernetesApis {
  batch: BatchV1Api;
  core: CoreV1Api;
  namespace: string;
  /** The API server's URL, for logs. */
  server: string;
}

/**
 * Loads the kubeconfig (TETHER_K8S_KUBECONFIG, else $KUBECONFIG,
 * ~/.kube/config, then the in-cluster service account: client-node's default
 * order) and builds the APIs. The client library is imported here, on first
 * use: it takes ~0.9 s to import on Node 20 (thousands of generated models),
 * which no orchestrator with another launcher should pay.
 */
export async function connectKubernetes(config: KubernetesLauncherConfig): Promise<KubernetesApis> {
  const k8s = await import("@kubernetes/client-node");
  const kubeconfig = new k8s.KubeConfig();
  const source = config.kubeconfig ?? defaultSource();
  if (source === undefined) {
    // loadFromDefault would silently fall back to http://localhost:8080.
    throw tetherError(ErrorCodes.LAUNCH_UNAUTHENTICATED, "No Kubernetes credentials: no TETHER_K8S_KUBECONFIG, KUBECONFIG, ~/.kube/config or in-cluster service account token.", {
      hint: "In the cluster, run the orchestrator with a service account (infra/kubernetes/rbac.yaml); outside, set TETHER_K8S_KUBECONFIG to a kubeconfig file.",
    });
  }
  try {
    if (config.kubeconfig) kubeconfig.loadFromFile(config.kubeconfig);
    else kubeconfig.loadFromDefault();
  } catch (error) {
    throw tetherError(ErrorCodes.LAUNCH_UNAUTHENTICATED, `Could not load the Kubernetes credentials from ${source}: ${errorMessage(error)}`, {
      cause: error,
      hint: "Check that the kubeconfig file exists and is valid YAML (kubectl --kubeconfig <file> config view).",
    });
  }
  const cluster = kubeconfig.getCurrentCluster();
  if (!cluster) {
    throw tetherError(ErrorCodes.LAUNCH_UNAUTHENTICATED, `The kubeconfig from ${source} has no current cluster.`, {
      hint: "Set current-context in the kubeconfig (kubectl config use-context <name>).",
    });
  }
  const namespace = config.namespace ?? kubeconfig.getContextObject(kubeconfig.getCurrentContext())?.namespace?.trim() ?? "default";
  const configuration = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeconfig },
    promiseMiddleware: [
      {
        pre: async (context) => {
          context.setSignal(AbortSignal.timeout(CALL_TIMEOUT_MS));
          return context;
        },
        post: async (response) => response,
      },
    ],
  });
  return { batch: new k8s.BatchV1Api(configuration), core: new k8s.CoreV1Api(configuration), namespace: namespace || "default", server: cluster.server };
}

/** What loadFromDefault would read, in its order; undefined when it would fall back to localhost:8080. */
function defaultSource(): string | undefined {
  const fromEnv = process.env.KUBECONFIG?.split(path.delimiter).find(Boolean);
  if (fromEnv) return `KUBECONFIG (${fromEnv})`;
  const home = path.join(homedir(), ".kube", "config");
  if (existsSync(home)) return home;
  if (existsSync(SERVICE_ACCOUNT_TOKEN)) return "the in-cluster service account";
  return undefined;
}
