import { mkdtemp, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes, type SessionInfo } from "@tether/shared";
import { loadConfig, startOrchestrator, type RunningOrchestrator } from "@tether/orchestrator";
import { FakeArmServer, type ArmRequest } from "./fakes/fake-arm-server.js";
import type { FakeTemplate } from "./fakes/fake-job-execution.js";
import { useFakePlatform } from "./helpers/fake-platform.js";
import { freePort } from "./helpers/redis-server.js";
import { waitForExit } from "./helpers/processes.js";
import { expectStatus, RestClient } from "./helpers/rest.js";

const SUBSCRIPTION_ID = "00000000-0000-4000-8000-0000000000a1";
const RESOURCE_GROUP = "tether-rg";
const JOB_NAME = "tether-worker";
const API_KEY = "key-alice-0123456789";
const POLL_INTERVAL_MS = 200;
const JOB_PATH = `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.App/jobs/${JOB_NAME}`;

interface AzureOrchestrator {
  server: RunningOrchestrator;
  alice: RestClient;
  publicUrl: string;
  close(): Promise<void>;
}

/** The real orchestrator with TETHER_LAUNCHER=azure; the fake's credential and rewrite policy are the only difference from production. */
async function startAzureOrchestrator(fake: FakeArmServer, overrides: Record<string, string> = {}): Promise<AzureOrchestrator> {
  const dataDir = await realpath(await mkdtemp(join(tmpdir(), "tether-azure-it-")));
  const port = await freePort();
  const publicUrl = `ws://127.0.0.1:${port}`;
  const config = loadConfig({
    TETHER_HOST: "127.0.0.1",
    TETHER_PORT: String(port),
    TETHER_API_KEYS: `alice:${API_KEY}`,
    TETHER_DATA_DIR: dataDir,
    TETHER_LOG_LEVEL: "silent",
    TETHER_LAUNCHER: "azure",
    TETHER_PUBLIC_URL: publicUrl,
    TETHER_AZURE_SUBSCRIPTION_ID: SUBSCRIPTION_ID,
    TETHER_AZURE_RESOURCE_GROUP: RESOURCE_GROUP,
    TETHER_AZURE_JOB_NAME: JOB_NAME,
    TETHER_AZURE_WORKER_IMAGE: "tetheracr.azurecr.io/tether-worker:test",
    TETHER_AZURE_ARM_ENDPOINT: fake.publicEndpoint,
    TETHER_AZURE_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS),
    ...overrides,
  });
  let server: RunningOrchestrator;
  try {
    server = await startOrchestrator(config, { azure: fake.clientOverrides() });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  let closed = false;
  return {
    server,
    alice: new RestClient(server.url, API_KEY),
    publicUrl,
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function startRequests(fake: FakeArmServer): ArmRequest[] {
  return fake.requests.filter((r) => r.method === "POST" && r.path === `${JOB_PATH}/start`);
}

describe("the Azure Container Apps Jobs launcher, against a fake ARM API through the real SDK", () => {
  let orchestrator: AzureOrchestrator | undefined;
  const platform = useFakePlatform(() => FakeArmServer.start({ subscriptionId: SUBSCRIPTION_ID, resourceGroup: RESOURCE_GROUP, jobName: JOB_NAME }), () => {
    const current = orchestrator;
    orchestrator = undefined;
    return current;
  }, "fake job executions");

  it("starts an execution with the bare template, runs code on the worker that dialed back, and stops it on delete", async () => {
    orchestrator = await startAzureOrchestrator(platform.fake);
    const session = expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: {} }), 201, "POST /v1/sessions");
    expect(session.status).toBe("ready");

    const [start] = startRequests(platform.fake);
    // A long-running operation: 202 + Location, polled until it answers {name, id}.
    expect(start?.status).toBe(202);
    const polls = platform.fake.requests.filter((r) => r.method === "GET" && r.path.includes("/containerappsjobOperationResults/"));
    expect(polls.map((r) => r.status)).toEqual([202, 200]);
    expect(start?.apiVersion).toMatch(/^\d{4}-\d{2}-\d{2}/);
    expect(start?.authorization).toBe("Bearer fake-arm-token");
    expect(platform.fake.tokenScopes).toContain(`${platform.fake.publicEndpoint}/.default`);
    const template = start?.body as FakeTemplate;
    expect(Object.keys(template)).toEqual(["containers"]);
    expect(template.containers).toHaveLength(1);
    const container = template.containers[0];
    expect(container?.name).toBe("worker");
    expect(container?.image).toBe("tetheracr.azurecr.io/tether-worker:test");
    expect(container?.resources).toEqual({ cpu: 0.5, memory: "1Gi" });
    const env = new Map((container?.env ?? []).map((variable) => [variable.name, variable.value]));
    // ?launch= lets a balancer in front of several replicas route the worker to its launching replica.
    expect(env.get("TETHER_ORCHESTRATOR_URL")).toBe(`${orchestrator.publicUrl}/v1/workers/connect?launch=${env.get("TETHER_LAUNCH_ID")}`);
    expect(env.get("TETHER_JOIN_TOKEN")).toEqual(expect.any(String));
    expect(env.get("TETHER_JOIN_TOKEN")?.length).toBeGreaterThan(16);
    expect(env.get("TETHER_LAUNCH_ID")).toEqual(expect.any(String));

    const result = await orchestrator.alice.execute(session.id, { code: "print(6*7)" });
    expect(result.status).toBe("ok");
    expect(result.stdout).toBe("42\n");

    const [execution] = platform.fake.executions.values();
    const pid = execution?.pid;
    expect(pid).toEqual(expect.any(Number));
    await orchestrator.alice.deleteSession(session.id);
    expect(platform.fake.requests.some((r) => r.method === "POST" && r.path === `${JOB_PATH}/executions/${execution?.name ?? ""}/stop`)).toBe(true);
    expect(await waitForExit(pid ?? -1, 10_000)).toBe(true);
    await platform.fake.waitFor(() => execution?.ended === true, 10_000, "the execution to end");
  });

  it("keeps a warm pool of job executions and hands one to a new session", async () => {
    orchestrator = await startAzureOrchestrator(platform.fake, { TETHER_POOL_SIZE: "1" });
    await platform.fake.waitFor(() => startRequests(platform.fake).length === 1, 15_000, "the pool's first start");
    const poolStatus = async () => expectStatus<{ ready: number }>(await orchestrator!.alice.request("GET", "/v1/pool"), 200, "GET /v1/pool");
    for (let tries = 0; (await poolStatus()).ready < 1; tries++) {
      if (tries > 150) throw new Error("the pooled worker never became ready");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [pooled] = platform.fake.executions.values();
    const session = expectStatus<SessionInfo>(await orchestrator.alice.request("POST", "/v1/sessions", { json: {} }), 201, "POST /v1/sessions");
    const result = await orchestrator.alice.execute(session.id, { code: "print(6*7)" });
    expect(result.stdout).toBe("42\n");
    expect(pooled?.status).toBe("Running");
    await orchestrator.alice.deleteSession(session.id);
    await platform.fake.waitFor(() => pooled?.ended === true, 10_000, "the claimed execution to end");
  });

  it("answers a refused start (403) at once with TETHER_ERR_LAUNCH_FORBIDDEN and the role to grant", async () => {
    orchestrator = await startAzureOrchestrator(platform.fake);
    platform.fake.refuseNextStart({
      status: 403,
      code: "AuthorizationFailed",
      message: "The client does not have authorization to perform action 'Microsoft.App/jobs/start/action'.",
    });
    const startedAt = Date.now();
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(res.status).toBe(502);
    expect(res.errorCode()).toBe(ErrorCodes.LAUNCH_FORBIDDEN);
    const body = res.json<{ error: { message: string; hint?: string } }>();
    expect(body.error.message).toContain("Microsoft.App/jobs/start/action");
    expect(body.error.hint).toContain("Container Apps Jobs Operator");
  });

  it("answers a throttled start (429) with 429, TETHER_ERR_LAUNCH_THROTTLED and Azure's Retry-After", async () => {
    orchestrator = await startAzureOrchestrator(platform.fake);
    platform.fake.refuseNextStart({ status: 429, code: "TooManyRequests", message: "Rate limit exceeded for jobs/start.", retryAfterS: 17 });
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(res.status).toBe(429);
    expect(res.errorCode()).toBe(ErrorCodes.LAUNCH_THROTTLED);
    expect(res.headers["retry-after"]).toBe("17");
  });

  it("fails the session within a few seconds, with Azure's reason, when the execution fails before dialing back", async () => {
    orchestrator = await startAzureOrchestrator(platform.fake);
    platform.fake.failNextExecutionBeforeDialBack("Failed to pull image 'tetheracr.azurecr.io/tether-worker:test': manifest unknown");
    const startedAt = Date.now();
    const res = await orchestrator.alice.request("POST", "/v1/sessions", { json: {} });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(res.status).toBe(502);
    expect(res.errorCode()).toBe(ErrorCodes.SESSION_START_FAILED);
    const message = res.json<{ error: { message: string } }>().error.message;
    expect(message).toMatch(new RegExp(`Azure job execution ${JOB_NAME}-[0-9a-f]{7} Failed`));
    expect(message).toContain("manifest unknown");
  });

  it("stops, at orchestrator start, running executions that no session owns", async () => {
    const orphan = platform.fake.addExecution("Running");
    const finished = platform.fake.addExecution("Succeeded");
    orchestrator = await startAzureOrchestrator(platform.fake);
    expect(orphan.status).toBe("Stopped");
    expect(finished.status).toBe("Succeeded");
    const stops = platform.fake.requests.filter((r) => r.method === "POST" && r.path.endsWith("/stop")).map((r) => r.path);
    expect(stops).toEqual([`${JOB_PATH}/executions/${orphan.name}/stop`]);
  });

  it("refuses to start when the job does not exist, naming the settings to check", async () => {
    const wrong = await FakeArmServer.start({ subscriptionId: SUBSCRIPTION_ID, resourceGroup: RESOURCE_GROUP, jobName: "another-job" });
    try {
      const error = await startAzureOrchestrator(wrong).then(
        () => undefined,
        (e: unknown) => e as { code?: string; hint?: string },
      );
      expect(error?.code).toBe(ErrorCodes.LAUNCH_NOT_FOUND);
      expect(error?.hint).toContain("TETHER_AZURE_JOB_NAME");
    } finally {
      await wrong.close();
    }
  });
});

describe("the Azure launcher's configuration", () => {
  const base = {
    TETHER_LAUNCHER: "azure",
    TETHER_AZURE_SUBSCRIPTION_ID: SUBSCRIPTION_ID,
    TETHER_AZURE_RESOURCE_GROUP: RESOURCE_GROUP,
    TETHER_AZURE_JOB_NAME: JOB_NAME,
    TETHER_AZURE_WORKER_IMAGE: "img",
    TETHER_PUBLIC_URL: "wss://tether.example.com",
  };
  const configError = (env: Record<string, string>): { code?: string; message?: string; hint?: string } => {
    try {
      loadConfig(env);
    } catch (error) {
      return error as { code?: string; message?: string };
    }
    throw new Error("loadConfig accepted the environment");
  };

  it("names every missing variable at once", () => {
    const error = configError({ TETHER_LAUNCHER: "azure", TETHER_AZURE_SUBSCRIPTION_ID: SUBSCRIPTION_ID });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    for (const name of ["TETHER_AZURE_RESOURCE_GROUP", "TETHER_AZURE_JOB_NAME", "TETHER_AZURE_WORKER_IMAGE", "TETHER_PUBLIC_URL"]) expect(error.message).toContain(name);
  });

  it("requires wss:// for the public URL unless ARM is local or a test endpoint", () => {
    const error = configError({ ...base, TETHER_PUBLIC_URL: "ws://tether.example.com" });
    expect(error.message).toContain("wss://");
    expect(error.hint).toContain("join token");
    expect(loadConfig({ ...base, TETHER_PUBLIC_URL: "ws://127.0.0.1:1", TETHER_AZURE_ARM_ENDPOINT: "https://arm.tether.test" }).azure?.armEndpoint).toBe("https://arm.tether.test");
  });

  it("defaults the worker's resources, container name, ARM endpoint and poll interval", () => {
    expect(loadConfig(base).azure).toEqual({
      subscriptionId: SUBSCRIPTION_ID,
      resourceGroup: RESOURCE_GROUP,
      jobName: JOB_NAME,
      workerImage: "img",
      cpu: 0.5,
      memory: "1Gi",
      containerName: "worker",
      armEndpoint: "https://management.azure.com",
      pollIntervalMs: 2000,
    });
    expect(loadConfig({}).launcher).toBe("local");
    expect(loadConfig({}).azure).toBeUndefined();
  });

  it("refuses an http ARM endpoint", () => {
    expect(configError({ ...base, TETHER_AZURE_ARM_ENDPOINT: "http://127.0.0.1:9" }).message).toContain("https://");
  });
});
