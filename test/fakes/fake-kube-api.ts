import { randomBytes, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { failureStatus, parseSelector, type KubeStatus } from "./fake-kube-objects.js";
import { FakeKubeStore, type FakeJob } from "./fake-kube-store.js";
import type { FakeKubelet, PullFailure } from "./fake-kube-pod.js";
import { selfSignedCertificate } from "./self-signed-cert.js";

export interface FakeKubeOptions {
  /** Namespaces that exist; requests for another answer 404 as the API server does. Default `["tether"]`. */
  namespaces?: readonly string[];
  /** What a pod's container runs; default the real worker, `node worker/dist/main.js`. */
  workerCommand?: readonly string[];
}

/** One request the fake answered, for assertions. */
export interface KubeRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

/** An error the next matching request gets instead of being served. */
export interface KubeRefusal {
  code: number;
  reason: string;
  message: string;
  retryAfterS?: number;
}

type Verb = "create" | "get" | "list" | "delete";
type Resource = "jobs" | "pods" | "secrets" | "events" | "pods/log";
type Answer = (status: number, payload?: unknown, headers?: Record<string, string>) => void;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * A local fake of the Kubernetes API server over HTTPS with a self-signed
 * certificate, for what Tether's launcher uses: batch/v1 Jobs (create, get,
 * list and delete with label selectors and propagation policies), core/v1
 * Pods (list by `job-name=`, logs), Secrets (create, delete, garbage
 * collected with their owner Job) and Events, answering errors with Status
 * objects. The client reaches it through a kubeconfig (`kubeconfigPath`), the
 * production code path. Each Job's pod runs the real worker (FakePod).
 */
export class FakeKubeApi extends EventEmitter {
  readonly requests: KubeRequest[] = [];
  readonly token = `fake-kube-token-${randomBytes(8).toString("hex")}`;
  readonly store: FakeKubeStore;
  private readonly refusals: { verb: Verb; resource: Resource; refusal: KubeRefusal }[] = [];
  private server!: Server;
  private root!: string;
  private kubeconfig!: string;
  private cert!: string;

  private constructor(private readonly options: FakeKubeOptions, kubelet: Omit<FakeKubelet, "secretData" | "changed">) {
    super();
    this.store = new FakeKubeStore(new Set(options.namespaces ?? ["tether"]), kubelet, () => this.emit("change"));
  }

  static async start(options: FakeKubeOptions = {}): Promise<FakeKubeApi> {
    const root = await realpath(await mkdtemp(join(tmpdir(), "tether-fake-kube-")));
    const imageEnv: Record<string, string> = {};
    // What the worker image would provide, plus the test run's leak marker (TETHER_TEST_*).
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && (name === "PATH" || name === "LANG" || name === "TETHER_PYTHON" || name.startsWith("TETHER_TEST_"))) imageEnv[name] = value;
    }
    const fake = new FakeKubeApi(options, { root: join(root, "pods"), workerCommand: options.workerCommand ?? [process.execPath, join(repoRoot, "worker/dist/main.js")], imageEnv });
    fake.root = root;
    const { key, cert } = await selfSignedCertificate(root);
    fake.server = createServer({ key, cert }, (req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, "127.0.0.1", resolve));
    fake.cert = cert;
    fake.kubeconfig = await fake.writeKubeconfig();
    return fake;
  }

  /**
   * Writes a kubeconfig pointing at this fake: its URL, its certificate as the
   * CA, a bearer token (this fake's unless given) and the first namespace as
   * the context's. JSON is YAML: client-node reads it like any kubeconfig.
   */
  async writeKubeconfig(options: { token?: string } = {}): Promise<string> {
    const file = join(this.root, `kubeconfig-${randomBytes(4).toString("hex")}`);
    const namespace = (this.options.namespaces ?? ["tether"])[0] ?? "default";
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "fake", cluster: { server: this.url, "certificate-authority-data": Buffer.from(this.cert).toString("base64") } }],
      users: [{ name: "tether", user: { token: options.token ?? this.token } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "tether", namespace } }],
      "current-context": "fake",
    };
    await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return file;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig pointing at this fake (CA, bearer token, context namespace). */
  get kubeconfigPath(): string {
    return this.kubeconfig;
  }

  /** Where pods' volumes live: no process may use it once the fake is closed. */
  get rootDir(): string {
    return this.root;
  }

  /** The next `verb` on `resource` answers this Status instead of being served. */
  refuseNext(verb: Verb, resource: Resource, refusal: KubeRefusal): void {
    this.refusals.push({ verb, resource, refusal });
  }

  /** The next Job's pod cannot pull its image: ErrImagePull with `message`, then ImagePullBackOff. */
  failNextPull(message: string, reason = "ErrImagePull"): void {
    this.store.pullFailures.push({ reason, message } satisfies PullFailure);
  }

  /** The next Job's container writes `logLine` to stderr and exits with `exitCode` (a worker that dies before dialing back). */
  crashNextContainer(exitCode: number, logLine: string): void {
    this.store.containerOverrides.push([process.execPath, "-e", `process.stderr.write(${JSON.stringify(`${logLine}\n`)}); process.exit(${exitCode})`]);
  }

  /** The next Job's pod cannot be scheduled: it stays Pending with this message (an autoscaler might add a node). */
  holdNextPodUnschedulable(message: string): void {
    this.store.unschedulable.push(message);
  }

  /** The job controller cannot create the next Job's pod: no pod, a FailedCreate event with `message`. */
  refuseNextPod(message: string): void {
    this.store.podRefusals.push(message);
  }

  /** Resolves once `predicate` holds, re-checked on every request and state change. */
  waitFor(predicate: () => boolean, timeoutMs = 15_000, what = "the fake Kubernetes state"): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; requests: ${this.requests.map((r) => `${r.method} ${r.path} ${r.status}`).join(", ")}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off("change", check);
      };
      this.on("change", check);
    });
  }

  /** Deletes every pod (and its processes), then stops the server. */
  async close(): Promise<void> {
    await this.store.deleteAllPods();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await rm(this.root, { recursive: true, force: true });
  }

  // ---- HTTP ----------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://fake");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const record: KubeRequest = { method: req.method ?? "GET", path: url.pathname, query: Object.fromEntries(url.searchParams), authorization: req.headers.authorization, body, status: 0 };
    const answer: Answer = (status, payload, headers = {}) => {
      record.status = status;
      this.requests.push(record);
      const isText = typeof payload === "string";
      // client-node refuses a body without a content type.
      res.writeHead(status, { "content-type": isText ? "text/plain" : "application/json", "audit-id": randomUUID(), ...headers });
      res.end(payload === undefined ? "" : isText ? payload : JSON.stringify(payload));
      this.emit("change");
    };
    try {
      this.route(record, url.searchParams, answer);
    } catch (error) {
      answer(500, failureStatus(500, "InternalError", `Internal error occurred: ${(error as Error).message}`));
    }
  }

  private route(request: KubeRequest, query: URLSearchParams, answer: Answer): void {
    if (request.authorization !== `Bearer ${this.token}`) return answer(401, failureStatus(401, "Unauthorized", "Unauthorized"));
    const match = /^\/(?:apis\/batch\/v1|api\/v1)\/namespaces\/([^/]+)\/(jobs|pods|secrets|events)(?:\/([^/]+))?(\/log)?$/.exec(request.path);
    const group = request.path.startsWith("/apis/batch/v1/") ? "batch" : "core";
    const [, namespace = "", kind = "", name, log] = match ?? [];
    if (!match || (kind === "jobs") !== (group === "batch")) return answer(404, failureStatus(404, "NotFound", "the server could not find the requested resource"));
    const resource = (log ? "pods/log" : kind) as Resource;
    const verb: Verb | undefined =
      request.method === "POST" && !name ? "create" : request.method === "GET" ? (name ? "get" : "list") : request.method === "DELETE" && name ? "delete" : undefined;
    if (!verb) return answer(405, failureStatus(405, "MethodNotAllowed", `${request.method} is not supported by this fake on ${request.path}`));
    const refusalIndex = this.refusals.findIndex((r) => r.verb === verb && r.resource === resource);
    const refusal = refusalIndex >= 0 ? this.refusals.splice(refusalIndex, 1)[0]?.refusal : undefined;
    if (refusal) {
      const details = refusal.retryAfterS === undefined ? undefined : { retryAfterSeconds: refusal.retryAfterS };
      return answer(refusal.code, failureStatus(refusal.code, refusal.reason, refusal.message, details), refusal.retryAfterS === undefined ? {} : { "retry-after": String(refusal.retryAfterS) });
    }
    if (!this.store.namespaces.has(namespace)) return answer(404, failureStatus(404, "NotFound", `namespaces "${namespace}" not found`, { name: namespace, kind: "namespaces" }));
    const labelSelector = parseSelector(query.get("labelSelector"));
    const fieldSelector = parseSelector(query.get("fieldSelector"));
    if (!labelSelector || !fieldSelector) return answer(400, failureStatus(400, "BadRequest", "unable to parse requirement: the fake speaks =, ==, != and existence only"));
    const result = this.serve(verb, resource, namespace, name, request, query, labelSelector, fieldSelector);
    answer(result.status, result.body);
  }

  private serve(
    verb: Verb,
    resource: Resource,
    namespace: string,
    name: string | undefined,
    request: KubeRequest,
    query: URLSearchParams,
    labels: NonNullable<ReturnType<typeof parseSelector>>,
    fields: NonNullable<ReturnType<typeof parseSelector>>,
  ): { status: number; body: KubeStatus | Record<string, unknown> | string } {
    const store = this.store;
    switch (`${verb} ${resource}`) {
      case "create jobs":
        return store.createJob(namespace, request.body);
      case "get jobs":
        return store.getJob(namespace, name ?? "");
      case "list jobs":
        return { status: 200, body: { apiVersion: "batch/v1", kind: "JobList", metadata: { resourceVersion: store.resourceVersion() }, items: store.listJobs(namespace, labels).map((job: FakeJob) => job.resource()) } };
      case "delete jobs": {
        const deleteOptions = (typeof request.body === "object" && request.body !== null ? request.body : {}) as { propagationPolicy?: string };
        return store.deleteJob(namespace, name ?? "", query.get("propagationPolicy") ?? deleteOptions.propagationPolicy ?? "Background");
      }
      case "list pods":
        return { status: 200, body: { apiVersion: "v1", kind: "PodList", metadata: { resourceVersion: store.resourceVersion() }, items: store.listPods(namespace, labels).map((pod) => pod.resource()) } };
      case "get pods/log":
        return store.podLog(namespace, name ?? "", Number(query.get("tailLines") ?? "0"));
      case "create secrets":
        return store.createSecret(namespace, request.body);
      case "delete secrets":
        return store.deleteSecret(namespace, name ?? "");
      case "list events":
        return { status: 200, body: { apiVersion: "v1", kind: "EventList", metadata: { resourceVersion: store.resourceVersion() }, items: store.listEvents(namespace, fields) } };
      default:
        return { status: 405, body: failureStatus(405, "MethodNotAllowed", `${verb} ${resource} is not supported by this fake`) };
    }
  }
}
