import { describe, expect, it } from "vitest";
import type { SessionInfo } from "@tether/shared";
import { FakeArmServer } from "./fakes/fake-arm-server.js";
import type { FakeTemplate } from "./fakes/fake-job-execution.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { useFakePlatform } from "./helpers/fake-platform.js";
import { freePort } from "./helpers/redis-server.js";
import { expectStatus } from "./helpers/rest.js";

const SUBSCRIPTION_ID = "00000000-0000-4000-8000-0000000000a2";
const RESOURCE_GROUP = "tether-rg";
const JOB_NAME = "tether-worker";
const JOB_PATH = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.App/jobs/${JOB_NAME}`;

describe("worker profiles with the Azure Container Apps Jobs launcher (fake ARM, real SDK)", () => {
  let orchestrator: TestOrchestrator | undefined;
  const platform = useFakePlatform(() => FakeArmServer.start({ subscriptionId: SUBSCRIPTION_ID, resourceGroup: RESOURCE_GROUP, jobName: JOB_NAME }), () => {
    const current = orchestrator;
    orchestrator = undefined;
    return current;
  }, "fake job executions");

  it("starts the execution of a profile's session with the profile's image, CPU, memory and env; a default session with the job settings", async () => {
    const port = await freePort();
    orchestrator = await startTestOrchestrator(
      {
        TETHER_PORT: String(port),
        TETHER_PUBLIC_URL: `ws://127.0.0.1:${port}`,
        TETHER_LAUNCHER: "azure",
        TETHER_AZURE_SUBSCRIPTION_ID: SUBSCRIPTION_ID,
        TETHER_AZURE_RESOURCE_GROUP: RESOURCE_GROUP,
        TETHER_AZURE_JOB_NAME: JOB_NAME,
        TETHER_AZURE_WORKER_IMAGE: "tetheracr.azurecr.io/tether-worker:test",
        TETHER_AZURE_ARM_ENDPOINT: platform.fake.publicEndpoint,
        TETHER_AZURE_POLL_INTERVAL_MS: "200",
        TETHER_PROFILES: JSON.stringify({ big: { image: "tetheracr.azurecr.io/tether-worker:big", cpu: 2, memoryMb: 4096, env: { PROFILE_MARK: "big" } } }),
      },
      () => ({ azure: platform.fake.clientOverrides() }),
    );
    const starts = () => platform.fake.requests.filter((r) => r.method === "POST" && r.path === `${JOB_PATH}/start`);
    const big = expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: { profile: "big", wait: false } }), 202, "POST /v1/sessions (big)");
    expect(big.profile).toBe("big");
    await platform.fake.waitFor(() => starts().length === 1, 15_000, "the profile session's start");
    const plain = expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: { wait: false } }), 202, "POST /v1/sessions");
    await platform.fake.waitFor(() => starts().length === 2, 15_000, "the default session's start");
    const [bigStart, plainStart] = starts().map((request) => (request.body as FakeTemplate).containers[0]);
    expect(bigStart?.image).toBe("tetheracr.azurecr.io/tether-worker:big");
    expect(bigStart?.resources).toEqual({ cpu: 2, memory: "4Gi" });
    expect(bigStart?.env).toEqual(expect.arrayContaining([{ name: "PROFILE_MARK", value: "big" }]));
    expect(plainStart?.image).toBe("tetheracr.azurecr.io/tether-worker:test");
    expect(plainStart?.resources).toEqual({ cpu: 0.5, memory: "1Gi" });
    expect(plainStart?.env?.some((variable) => variable.name === "PROFILE_MARK")).toBe(false);
    await orchestrator.alice.deleteSession(big.id);
    await orchestrator.alice.deleteSession(plain.id);
  });
});
