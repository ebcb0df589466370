import { describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { FakeKubeApi } from "./fakes/fake-kube-api.js";
import type { JobBody } from "./fakes/fake-kube-objects.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { useFakePlatform } from "./helpers/fake-platform.js";
import { freePort } from "./helpers/redis-server.js";
import { expectStatus } from "./helpers/rest.js";

const NAMESPACE = "tether";
const JOBS_PATH = `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`;
const GPU_IMAGE = "registry.example.com/tether-worker:cuda-test";

interface Readyz {
  status: "ready" | "not_ready";
  reasons: string[];
  checks: Record<string, { ok: boolean; detail: string }>;
}

describe("worker profiles and readiness with the Kubernetes launcher (fake API server)", () => {
  let orchestrator: TestOrchestrator | undefined;
  const platform = useFakePlatform(() => FakeKubeApi.start({ namespaces: [NAMESPACE] }), () => {
    const current = orchestrator;
    orchestrator = undefined;
    return current;
  }, "fake pods");

  it("runs a session of the gpu profile on a Job with its image, GPU limit and toleration, node selector and env; /readyz follows the API server", async () => {
    const port = await freePort();
    orchestrator = await startTestOrchestrator({
      TETHER_PORT: String(port),
      TETHER_PUBLIC_URL: `ws://127.0.0.1:${port}`,
      TETHER_LAUNCHER: "kubernetes",
      TETHER_K8S_KUBECONFIG: platform.fake.kubeconfigPath,
      TETHER_K8S_NAMESPACE: NAMESPACE,
      TETHER_K8S_WORKER_IMAGE: "registry.example.com/tether-worker:test",
      TETHER_K8S_POLL_INTERVAL_MS: "100",
      TETHER_K8S_NODE_SELECTOR: "kubernetes.io/os=linux",
      TETHER_PROFILES: JSON.stringify({
        gpu: { image: GPU_IMAGE, cpu: 4, memoryMb: 16384, gpu: 1, nodeSelector: { "tether.dev/pool": "gpu" }, env: { PROFILE_MARK: "gpu-profile" } },
      }),
    });
    const { alice } = orchestrator;
    // The API server refusing the launcher's own call makes the orchestrator not ready, with the reason; the next probe sees it recover.
    platform.fake.refuseNext("list", "jobs", { code: 403, reason: "Forbidden", message: 'jobs.batch is forbidden: User "system:serviceaccount:tether:tether" cannot list resource "jobs"' });
    const refused = await alice.request("GET", "/readyz", { auth: false });
    expect(refused.status).toBe(503);
    const body = refused.json<Readyz>();
    expect(body.status).toBe("not_ready");
    expect(body.reasons).toEqual([expect.stringMatching(new RegExp(`^launcher: .*forbidden.*\\[${ErrorCodes.LAUNCH_FORBIDDEN}\\]$`, "i"))]);
    const ready = await alice.request("GET", "/readyz", { auth: false });
    expect(ready.status).toBe(200);
    expect(ready.json<Readyz>()).toMatchObject({ status: "ready", reasons: [] });
    expect(ready.json<Readyz>().checks.launcher).toEqual({ ok: true, detail: expect.stringContaining(`lists Jobs in namespace ${NAMESPACE}`) });

    const session = expectStatus<SessionInfo>(await alice.request("POST", "/v1/sessions", { json: { profile: "gpu" } }), 201, "POST /v1/sessions (gpu)");
    expect(session.profile).toBe("gpu");
    const [create] = platform.fake.requests.filter((r) => r.method === "POST" && r.path === JOBS_PATH);
    const job = create?.body as JobBody;
    const pod = job.spec?.template?.spec;
    const container = pod?.containers?.[0];
    expect(container?.image).toBe(GPU_IMAGE);
    expect(container?.resources).toEqual({ requests: { cpu: "4", memory: "16384Mi" }, limits: { cpu: "4", memory: "16384Mi", "nvidia.com/gpu": "1" } });
    expect(pod?.nodeSelector).toEqual({ "kubernetes.io/os": "linux", "tether.dev/pool": "gpu" });
    expect(pod?.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(job.metadata.labels).toMatchObject({ "tether.dev/profile": "gpu", "tether.dev/session-id": session.id });
    expect(container?.env).toEqual(expect.arrayContaining([{ name: "PROFILE_MARK", value: "gpu-profile" }]));
    const result = await alice.execute(session.id, { code: "import os\nprint(os.environ.get('PROFILE_MARK'))" });
    expect(result.stdout).toBe("gpu-profile\n");
  });
});
