import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { FakeKubeApi, type KubeRequest } from "./fakes/fake-kube-api.js";
import type { JobBody, SecretBody } from "./fakes/fake-kube-objects.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { useFakePlatform } from "./helpers/fake-platform.js";
import { freePort } from "./helpers/redis-server.js";
import { waitForExit } from "./helpers/processes.js";
import { expectStatus } from "./helpers/rest.js";

const NAMESPACE = "tether";
const IMAGE = "registry.example.com/tether-worker:test";
const JOBS_PATH = `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`;
const SECRETS_PATH = `/api/v1/namespaces/${NAMESPACE}/secrets`;
const MANAGED = { "app.kubernetes.io/managed-by": "tether", "tether.dev/orchestrator": "tether" };

/** The real orchestrator with TETHER_LAUNCHER=kubernetes; the kubeconfig is its only link to the fake. */
async function startKubernetesOrchestrator(fake: FakeKubeApi, overrides: Record<string, string> = {}): Promise<TestOrchestrator & { publicUrl: string }> {
  const port = await freePort();
  const publicUrl = `ws://127.0.0.1:${port}`;
  const orchestrator = await startTestOrchestrator({
    TETHER_PORT: String(port),
    TETHER_PUBLIC_URL: publicUrl,
    TETHER_LAUNCHER: "kubernetes",
    TETHER_K8S_KUBECONFIG: fake.kubeconfigPath,
    TETHER_K8S_NAMESPACE: NAMESPACE,
    TETHER_K8S_WORKER_IMAGE: IMAGE,
    TETHER_K8S_POLL_INTERVAL_MS: "100",
    ...overrides,
  });
  return Object.assign(orchestrator, { publicUrl });
}

function requestsTo(fake: FakeKubeApi, method: string, path: string): KubeRequest[] {
  return fake.requests.filter((r) => r.method === method && r.path === path);
}

describe("the Kubernetes Jobs launcher, against a fake API server through @kubernetes/client-node", () => {
  let orchestrator: TestOrchestrator | undefined;
  const platform = useFakePlatform(() => FakeKubeApi.start({ namespaces: [NAMESPACE] }), () => {
    const current = orchestrator;
    orchestrator = undefined;
    return current;
  }, "fake pods");

  it("runs a session's code on a worker Job built as promised, keeps the join token out of the spec, and deletes Job and Secret with the session", async () => {
    const started = await startKubernetesOrchestrator(platform.fake, {
      TETHER_K8S_CPU_REQUEST: "250m",
      TETHER_K8S_MEMORY_REQUEST: "512Mi",
      TETHER_K8S_TTL_S: "120",
    });
    orchestrator = started;
    const createdAt = Date.now();
    const session = await started.alice.createSession();
    const readyMs = Date.now() - createdAt;
    expect(session.status).toBe("ready");

    const [create] = requestsTo(platform.fake, "POST", JOBS_PATH);
    expect(create?.status).toBe(201);
    expect(create?.authorization).toBe(`Bearer ${platform.fake.token}`);
    const job = create?.body as JobBody & { spec: Record<string, unknown> };
    const name = job.metadata.name ?? "";
    expect(name).toMatch(/^tether-lch-[0-9a-f]{32}$/);
    expect(job.metadata.labels).toMatchObject({ ...MANAGED, "app.kubernetes.io/component": "worker", "tether.dev/session-id": session.id });
    expect(job.metadata.labels?.["tether.dev/launch-id"]).toMatch(/^lch_[0-9a-f]{32}$/);
    expect(job.spec).toMatchObject({ backoffLimit: 0, ttlSecondsAfterFinished: 120, completions: 1, parallelism: 1 });
    const pod = job.spec.template?.spec;
    expect(pod).toMatchObject({ restartPolicy: "Never", automountServiceAccountToken: false, enableServiceLinks: false });
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } });
    expect(job.spec.template?.metadata?.labels).toMatchObject(MANAGED);
    const container = pod?.containers?.[0];
    expect(container?.image).toBe(IMAGE);
    expect(container?.resources).toEqual({ requests: { cpu: "250m", memory: "512Mi" }, limits: { cpu: "1", memory: "1Gi" } });
    expect(container?.securityContext).toMatchObject({ runAsNonRoot: true, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    const env = new Map((container?.env ?? []).map((variable) => [variable.name, variable.value]));
    // ?launch= lets a balancer in front of several replicas route the worker to its launching replica.
    expect(env.get("TETHER_ORCHESTRATOR_URL")).toBe(`${started.publicUrl}/v1/workers/connect?launch=${env.get("TETHER_LAUNCH_ID")}`);
    expect(env.get("TETHER_JOIN_TOKEN_FILE")).toBe("/var/run/tether/join-token");
    expect(env.has("TETHER_JOIN_TOKEN")).toBe(false);
    expect(container?.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: "workspace", mountPath: "/workspace" },
        { name: "workspace", mountPath: "/mnt/data" },
        { name: "join-token", mountPath: "/var/run/tether", readOnly: true },
      ]),
    );
    expect(pod?.volumes).toEqual(expect.arrayContaining([{ name: "workspace", emptyDir: { sizeLimit: "10Gi" } }]));
    const tokenVolume = pod?.volumes?.find((volume) => volume.name === "join-token");
    expect(tokenVolume?.secret).toMatchObject({ secretName: `${name}-join`, defaultMode: 0o400 });

    // The token lives in a Secret owned by the Job, and nowhere in the Job or the pod's environment.
    const [secretCreate] = requestsTo(platform.fake, "POST", SECRETS_PATH);
    const secret = secretCreate?.body as SecretBody;
    const jobUid = (platform.fake.store.jobNamed(name)?.uid ?? "missing") as string;
    expect(secret.metadata.name).toBe(`${name}-join`);
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ apiVersion: "batch/v1", kind: "Job", name, uid: jobUid })]);
    const token = Buffer.from(secret.data?.["join-token"] ?? "", "base64").toString("utf8");
    expect(token.length).toBeGreaterThan(16);
    expect(JSON.stringify(job)).not.toContain(token);
    const fakePod = platform.fake.store.jobNamed(name)?.pod;
    expect(Object.values(fakePod?.processEnv ?? {})).not.toContain(token);
    expect(Object.keys(fakePod?.processEnv ?? { missing: "" })).not.toContain("TETHER_JOIN_TOKEN");

    const result = await started.alice.execute(session.id, {
      code: "import os\nprint(6*7)\nprint('TETHER_JOIN_TOKEN' in os.environ, os.path.exists(os.environ['TETHER_JOIN_TOKEN_FILE']))",
    });
    expect(result.status).toBe("ok");
    expect(result.stdout).toBe("42\nFalse False\n");
    // Read once, removed by the worker; the spent token's Secret is deleted once the worker joined.
    expect(existsSync(fakePod?.hostPath("/var/run/tether/join-token") ?? "/")).toBe(false);
    await platform.fake.waitFor(() => platform.fake.store.deletedSecrets.some((s) => s.name === `${name}-join` && s.by === "api"), 5000, "the join token Secret to be deleted");

    const pid = fakePod?.pid;
    expect(pid).toEqual(expect.any(Number));
    await started.alice.deleteSession(session.id);
    expect(platform.fake.store.deletedJobs).toEqual([{ name, propagationPolicy: "Background" }]);
    expect(platform.fake.store.jobNamed(name)).toBeUndefined();
    expect(platform.fake.store.secretNamed(`${name}-join`)).toBeUndefined();
    expect(await waitForExit(pid ?? -1, 10_000)).toBe(true);
    console.info(`kubernetes launcher: POST /v1/sessions to ready through the fake API server: ${readyMs} ms`);
  });

  it("deletes the Job and its join token Secret when a session is deleted before its worker dialed back", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    // An unschedulable pod is not a failure (an autoscaler may add a node): the session keeps starting.
    platform.fake.holdNextPodUnschedulable("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.");
    const session = expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: { wait: false } }), 202, "POST /v1/sessions (no wait)");
    await platform.fake.waitFor(() => platform.fake.store.secrets.size === 1, 5000, "the join token Secret");
    // Several looks at the pending pod (every 100 ms) leave the session starting.
    await platform.fake.waitFor(() => requestsTo(platform.fake, "GET", `/api/v1/namespaces/${NAMESPACE}/pods`).length >= 3, 5000, "three looks at the pod");
    expect((await orchestrator.alice.getSession(session.id)).status).toBe("starting");
    const [secret] = platform.fake.store.secrets.values();
    await orchestrator.alice.deleteSession(session.id);
    const name = (requestsTo(platform.fake, "POST", JOBS_PATH)[0]?.body as JobBody).metadata.name ?? "";
    await platform.fake.waitFor(() => platform.fake.store.jobNamed(name) === undefined, 5000, "the Job to be deleted");
    expect(platform.fake.store.deletedJobs).toEqual([{ name, propagationPolicy: "Background" }]);
    expect(secret?.name).toBe(`${name}-join`);
    expect(platform.fake.store.secrets.size).toBe(0);
    expect(platform.fake.store.deletedSecrets.map((deleted) => deleted.name)).toContain(`${name}-join`);
  });

  it("fails the start within a few seconds, with Kubernetes' reason, when the pod cannot pull its image, and deletes the Job", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    platform.fake.failNextPull(`rpc error: code = NotFound desc = failed to pull and unpack image "${IMAGE}": not found`);
    const startedAt = Date.now();
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(res.status).toBe(502);
    expect(res.errorCode()).toBe(ErrorCodes.SESSION_START_FAILED);
    const message = res.json<{ error: { message: string } }>().error.message;
    expect(message).toMatch(/Kubernetes pod tether-lch-[0-9a-f]{32}-[0-9a-f]{5} cannot start: worker: (ErrImagePull|ImagePullBackOff)/);
    const name = (requestsTo(platform.fake, "POST", JOBS_PATH)[0]?.body as JobBody).metadata.name ?? "";
    await platform.fake.waitFor(() => platform.fake.store.jobNamed(name) === undefined, 5000, "the failed Job to be deleted");
    expect(platform.fake.store.deletedJobs).toEqual([{ name, propagationPolicy: "Background" }]);
  });

  it("fails the start at once, with the exit code and the worker's last log lines, when the container dies before dialing back", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    platform.fake.crashNextContainer(3, '{"level":50,"msg":"no usable Python runtime","code":"TETHER_ERR_RUNTIME_PYTHON_NOT_FOUND"}');
    const startedAt = Date.now();
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(res.status).toBe(502);
    expect(res.errorCode()).toBe(ErrorCodes.SESSION_START_FAILED);
    const message = res.json<{ error: { message: string } }>().error.message;
    expect(message).toMatch(/Kubernetes pod tether-lch-[0-9a-f]+-[0-9a-f]{5} Failed: worker: Error, exit code 3/);
    expect(message).toContain("last worker output:\nno usable Python runtime");
    expect(platform.fake.requests.some((r) => r.method === "GET" && r.path.endsWith("/log") && r.query.container === "worker" && r.status === 200)).toBe(true);
  });

  it("fails the start at once when the job controller may not create the pod (a ResourceQuota), naming the quota", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    platform.fake.refuseNextPod("exceeded quota: tether-workers, requested: limits.cpu=1, used: limits.cpu=8, limited: limits.cpu=8");
    const startedAt = Date.now();
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(res.status).toBe(502);
    expect(res.errorCode()).toBe(ErrorCodes.SESSION_START_FAILED);
    expect(res.json<{ error: { message: string } }>().error.message).toMatch(/could not create the pod of Job tether-lch-[0-9a-f]+: .*exceeded quota: tether-workers/);
  });

  it("answers a refused Job (403 RBAC) at once with TETHER_ERR_LAUNCH_FORBIDDEN and the Role to grant", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    platform.fake.refuseNext("create", "jobs", {
      code: 403,
      reason: "Forbidden",
      message: `jobs.batch is forbidden: User "system:serviceaccount:${NAMESPACE}:tether" cannot create resource "jobs" in API group "batch" in the namespace "${NAMESPACE}"`,
    });
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(res.status).toBe(502);
    expect(res.errorCode()).toBe(ErrorCodes.LAUNCH_FORBIDDEN);
    const body = res.json<{ error: { message: string; hint?: string } }>();
    expect(body.error.message).toContain('cannot create resource "jobs"');
    expect(body.error.hint).toContain("rbac.yaml");
    expect(requestsTo(platform.fake, "POST", SECRETS_PATH)).toEqual([]);
  });

  it("answers a throttled Job (429) with 429, TETHER_ERR_LAUNCH_THROTTLED and the API server's Retry-After", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    platform.fake.refuseNext("create", "jobs", { code: 429, reason: "TooManyRequests", message: "Too many requests, please try again later.", retryAfterS: 9 });
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(res.status).toBe(429);
    expect(res.errorCode()).toBe(ErrorCodes.LAUNCH_THROTTLED);
    expect(res.headers["retry-after"]).toBe("9");
  });

  it("deletes the Job again when its join token Secret is refused (quota), answering TETHER_ERR_LAUNCH_QUOTA", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake);
    platform.fake.refuseNext("create", "secrets", {
      code: 403,
      reason: "Forbidden",
      message: 'secrets "x" is forbidden: exceeded quota: tether-objects, requested: count/secrets=1, used: count/secrets=20, limited: count/secrets=20',
    });
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(res.status).toBe(503);
    expect(res.errorCode()).toBe(ErrorCodes.LAUNCH_QUOTA);
    const name = (requestsTo(platform.fake, "POST", JOBS_PATH)[0]?.body as JobBody).metadata.name ?? "";
    expect(platform.fake.store.deletedJobs).toEqual([{ name, propagationPolicy: "Background" }]);
    expect(platform.fake.store.jobs.size).toBe(0);
  });

  it("stops a session whose worker pod dies (worker_lost), and resumes it on a new Job", async () => {
    const started = await startKubernetesOrchestrator(platform.fake, { TETHER_HEARTBEAT_INTERVAL_MS: "200" });
    orchestrator = started;
    const session = await started.alice.createSession();
    expect((await started.alice.execute(session.id, { code: "x = 41" })).status).toBe("ok");
    const [first] = platform.fake.store.jobs.values();
    first?.pod?.kill("SIGKILL");
    await platform.fake.waitFor(() => first?.pod?.phase === "Failed", 10_000, "the pod to fail");
    let info: SessionInfo = await started.alice.getSession(session.id);
    for (let tries = 0; info.status !== "stopped"; tries++) {
      if (tries > 300) throw new Error(`the session never stopped: ${JSON.stringify(info)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      info = await started.alice.getSession(session.id);
    }
    expect(info.stopReason?.kind).toBe("worker_lost");
    // The Job is gone too (the launcher deleted it), so nothing is left to reconcile.
    await platform.fake.waitFor(() => platform.fake.store.jobNamed(first?.name ?? "") === undefined, 5000, "the lost worker's Job to be deleted");

    const resumed = await started.alice.execute(session.id, { code: "print('x' in globals())" });
    expect(resumed.status).toBe("ok");
    expect(resumed.resumed).toBe(true);
    expect(resumed.stateLost).toBe(true);
    expect(resumed.stdout).toBe("False\n");
    expect(requestsTo(platform.fake, "POST", JOBS_PATH)).toHaveLength(2);
  });

  it("deletes, at orchestrator start, its own unfinished Jobs that no session owns, and no one else's", async () => {
    const orphan = platform.fake.store.addJob(NAMESPACE, "tether-lch-orphan", { ...MANAGED });
    const finished = platform.fake.store.addJob(NAMESPACE, "tether-lch-finished", { ...MANAGED }, "Complete");
    const another = platform.fake.store.addJob(NAMESPACE, "tether-lch-another", { ...MANAGED, "tether.dev/orchestrator": "staging" });
    const unrelated = platform.fake.store.addJob(NAMESPACE, "nightly-report", { app: "reports" });
    // Without TETHER_K8S_NAMESPACE: the kubeconfig context's namespace.
    orchestrator = await startKubernetesOrchestrator(platform.fake, { TETHER_K8S_NAMESPACE: "" });
    const [list] = requestsTo(platform.fake, "GET", JOBS_PATH);
    expect(list?.query.labelSelector).toBe("app.kubernetes.io/managed-by=tether,tether.dev/orchestrator=tether");
    expect(platform.fake.store.deletedJobs).toEqual([{ name: orphan.name, propagationPolicy: "Background" }]);
    expect([finished, another, unrelated].map((job) => platform.fake.store.jobNamed(job.name) === job)).toEqual([true, true, true]);
  });

  it("refuses to start when the namespace does not exist, naming the setting to check", async () => {
    const error = await startKubernetesOrchestrator(platform.fake, { TETHER_K8S_NAMESPACE: "missing" }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string; hint?: string },
    );
    expect(error?.code).toBe(ErrorCodes.LAUNCH_NOT_FOUND);
    expect(error?.message).toContain('namespaces "missing" not found');
    expect(error?.hint).toContain("TETHER_K8S_NAMESPACE");
  });

  it("refuses to start with credentials the API server rejects (401)", async () => {
    const error = await startKubernetesOrchestrator(platform.fake, { TETHER_K8S_KUBECONFIG: await platform.fake.writeKubeconfig({ token: "revoked-token" }) }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; hint?: string },
    );
    expect(error?.code).toBe(ErrorCodes.LAUNCH_UNAUTHENTICATED);
    expect(error?.hint).toContain("TETHER_K8S_KUBECONFIG");
    expect(requestsTo(platform.fake, "GET", JOBS_PATH).map((r) => r.status)).toEqual([401]);
  });

  it("keeps a warm pool of worker Jobs and hands one to a new session", async () => {
    orchestrator = await startKubernetesOrchestrator(platform.fake, { TETHER_POOL_SIZE: "1" });
    const poolReady = async () => expectStatus<{ ready: number }>(await orchestrator!.alice.request("GET", "/v1/pool"), 200, "GET /v1/pool").ready;
    for (let tries = 0; (await poolReady()) < 1; tries++) {
      if (tries > 300) throw new Error("the pooled worker never became ready");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [pooled] = requestsTo(platform.fake, "POST", JOBS_PATH);
    const pooledJob = pooled?.body as JobBody;
    // A pool worker has no session yet: no session label.
    expect(pooledJob.metadata.labels?.["tether.dev/session-id"]).toBeUndefined();
    const session = await orchestrator.alice.createSession();
    const result = await orchestrator.alice.execute(session.id, { code: "print(6*7)" });
    expect(result.stdout).toBe("42\n");
    expect(platform.fake.store.jobNamed(pooledJob.metadata.name ?? "")?.pod?.phase).toBe("Running");
    await orchestrator.alice.deleteSession(session.id);
    expect(platform.fake.store.deletedJobs.map((d) => d.name)).toContain(pooledJob.metadata.name);
  });
});
