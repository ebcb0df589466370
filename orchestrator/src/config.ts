import path from "node:path";
import { fileURLToPath } from "node:url";
import { readAgentAdaptersConfig, type AgentAdaptersConfig } from "./config-agents.js";
import { readAuthConfig, type AuthConfig } from "./config-auth.js";
import { readDockerConfig, type DockerLauncherConfig } from "./config-docker.js";
import { readClusterConfig, type ClusterConfig } from "./config-cluster.js";
import { checkKubernetesProfiles, readKubernetesConfig, type KubernetesLauncherConfig } from "./config-kubernetes.js";
import { readProfiles, type WorkerProfile } from "./config-profiles.js";
import { readSnapshotConfig, type SnapshotConfig } from "./config-snapshots.js";
import { MiB, isLocalHost, readInteger, readMetricsToken, readString, type Env } from "./config-readers.js";
import { readSandboxConfig, type SandboxSetting } from "./config-sandbox.js";
import { configInvalid } from "./errors.js";

/** One tenant's API key. Sessions belong to the tenant whose key created them. */
export interface ApiKeyEntry {
  tenant: string;
  key: string;
}

export type LauncherKind = "local" | "azure" | "kubernetes" | "docker";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** Everything the orchestrator reads from its environment, validated once. */
export interface OrchestratorConfig {
  /** TETHER_HOST, default 127.0.0.1. */
  host: string;
  /** TETHER_PORT, default 8080; 0 picks a free port. */
  port: number;
  /** TETHER_API_KEYS `tenant:key,...`; empty means "generate one and keep it in <dataDir>/api-key". */
  apiKeys: readonly ApiKeyEntry[];
  /** TETHER_DATA_DIR, absolute; default `./.tether` relative to the cwd. */
  dataDir: string;
  /** TETHER_PUBLIC_URL: ws base URL workers dial; undefined = derived from the listening address. */
  publicUrl: string | undefined;
  /** TETHER_LAUNCHER: `local` (default), `docker`, `kubernetes` or `azure`. */
  launcher: LauncherKind;
  /** TETHER_AZURE_*: set (and validated) only when the launcher is `azure`. */
  azure?: AzureLauncherConfig;
  /** TETHER_K8S_*: set (and validated) only when the launcher is `kubernetes`. */
  kubernetes?: KubernetesLauncherConfig;
  /** TETHER_REDIS_URL and friends: set only when replicas share a Redis (config-cluster.ts). */
  cluster?: ClusterConfig;
  /** TETHER_DOCKER_*: set (and validated) only when the launcher is `docker`. */
  docker?: DockerLauncherConfig;
  /** TETHER_SANDBOX*: how the `local` launcher confines each worker (bubblewrap, on by default); other launchers ignore it. */
  sandbox: SandboxSetting;
  /** TETHER_WORKER_COMMAND split into argv; default `node <repo>/worker/dist/main.js`. */
  workerCommand: readonly string[];
  /** TETHER_PLAYGROUND_DIR: the built playground page served at /playground; default `<repo>/client/dist/playground`; empty: off. */
  playgroundDir: string | undefined;
  /** TETHER_PYTHON; undefined = probe once at start. */
  python: string | undefined;
  defaultExecTimeoutMs: number;
  maxExecTimeoutMs: number;
  /** stdout/stderr of one REST execution are cut past this many bytes. */
  maxOutputBytes: number;
  startTimeoutMs: number;
  joinTokenTtlMs: number;
  heartbeatIntervalMs: number;
  /** Passed to workers: after a timeout interrupt, how long before the kernel is restarted. */
  interruptGraceMs: number;
  maxUploadBytes: number;
  /** JSON body limit. */
  maxRequestBytes: number;
  /** Largest client websocket frame the app accepts; bigger frames get protocol_error (over twice this, the socket closes 1009). */
  maxClientFrameBytes: number;
  /** TETHER_EVENT_LOG_MAX_BYTES, default 32 MiB: a session's numbered messages kept for `?after=` replay (and its execution records). */
  eventLogMaxBytes: number;
  /** TETHER_EXECUTION_RETENTION_S, default 3600: how long an ended execution's record and messages are kept. */
  executionRetentionS: number;
  /** TETHER_SLOW_CLIENT_TIMEOUT_MS, default 15000: a websocket client backed up this long is disconnected (1013) so it stops holding the worker back. */
  slowClientTimeoutMs: number;
  logLevel: LogLevel;
  /** TETHER_POOL_SIZE, default 0: workers kept dialed in with a ready kernel, claimed by POST /v1/sessions. */
  poolSize: number;
  /** TETHER_POOL_PRELOAD: code a pooled worker runs before it counts as ready (e.g. `import numpy, pandas`). */
  poolPreload: string | undefined;
  /** TETHER_MAX_CONCURRENT_STARTS, default 20: worker launches in progress (pool refills included). */
  maxConcurrentStarts: number;
  /** TETHER_MAX_SESSIONS_PER_TENANT, default 100: sessions a tenant may hold (stopped ones included, failed ones not). */
  maxSessionsPerTenant: number;
  /** TETHER_IDLE_TIMEOUT_S, default 600: seconds without executions before a session scales to zero. */
  idleTimeoutS: number;
  /** TETHER_MAX_SESSION_LIFETIME_S, default 86400: longest a worker serves a session before it is stopped (snapshotted) too. */
  maxSessionLifetimeS: number;
  /** Session tokens, CORS and OIDC (config-auth.ts). */
  auth: AuthConfig;
  /** TETHER_SNAPSHOT_*: where scale-to-zero snapshots live and how long (config-snapshots.ts). */
  snapshots: SnapshotConfig;
  /** TETHER_PROFILES or TETHER_PROFILES_FILE: worker profiles by name; always has `default` (empty: the launcher's own settings). */
  profiles: ReadonlyMap<string, WorkerProfile>;
  /** TETHER_METRICS_TOKEN: bearer token `/metrics` requires; undefined: `/metrics` answers loopback clients only. */
  metricsToken: string | undefined;
  /** TETHER_MCP_*, TETHER_DYNAMIC_SESSIONS_*: the agent adapters (config-agents.ts). */
  agents: AgentAdaptersConfig;
}

/** Where and how the `azure` launcher starts Azure Container Apps Jobs executions. */
export interface AzureLauncherConfig {
  /** TETHER_AZURE_SUBSCRIPTION_ID (a UUID), required. */
  subscriptionId: string;
  /** TETHER_AZURE_RESOURCE_GROUP, required. */
  resourceGroup: string;
  /** TETHER_AZURE_JOB_NAME: an existing job with a manual trigger, required. */
  jobName: string;
  /** TETHER_AZURE_WORKER_IMAGE: the worker image each execution runs, required. */
  workerImage: string;
  /** TETHER_AZURE_CPU: vCPUs per worker, default 0.5. */
  cpu: number;
  /** TETHER_AZURE_MEMORY: memory per worker, default `1Gi`. */
  memory: string;
  /** TETHER_AZURE_CONTAINER_NAME: the container the start template overrides, default `worker`. */
  containerName: string;
  /** TETHER_AZURE_ARM_ENDPOINT: https base URL of Azure Resource Manager, default https://management.azure.com (sovereign clouds, tests). */
  armEndpoint: string;
  /** TETHER_AZURE_POLL_INTERVAL_MS: how often an execution that has not dialed back is checked, default 2000. */
  pollIntervalMs: number;
}

const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The worker entry point, found as a file next to this package (never imported). */
function defaultWorkerCommand(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [process.execPath, path.resolve(here, "../../worker/dist/main.js")];
}

/** The playground page as `npm run build` leaves it in this checkout (client/dist/playground). */
function readPlaygroundDir(raw: string | undefined): string | undefined {
  if (raw === undefined) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../client/dist/playground");
  return raw.trim() === "" ? undefined : path.resolve(raw.trim());
}

/**
 * Reads and validates the TETHER_* variables. Throws a TetherError
 * (TETHER_ERR_CONFIG_INVALID) naming the variable at the first problem.
 */
export function loadConfig(env: Env = process.env): OrchestratorConfig {
  const launcher = readLauncher(env.TETHER_LAUNCHER);
  const dataDir = path.resolve(readString(env, "TETHER_DATA_DIR", ".tether"));
  const config: OrchestratorConfig = {
    host: readString(env, "TETHER_HOST", "127.0.0.1"),
    port: readInteger(env, "TETHER_PORT", 8080, 0, 65535),
    apiKeys: parseApiKeys(env.TETHER_API_KEYS),
    dataDir,
    publicUrl: readPublicUrl(env.TETHER_PUBLIC_URL),
    launcher,
    sandbox: launcher === "local" ? readSandboxConfig(env) : { mode: "off" },
    workerCommand: env.TETHER_WORKER_COMMAND?.trim() ? splitCommand(env.TETHER_WORKER_COMMAND) : defaultWorkerCommand(),
    python: env.TETHER_PYTHON?.trim() || undefined,
    playgroundDir: readPlaygroundDir(env.TETHER_PLAYGROUND_DIR),
    defaultExecTimeoutMs: readInteger(env, "TETHER_DEFAULT_EXEC_TIMEOUT_MS", 60_000, 1),
    maxExecTimeoutMs: readInteger(env, "TETHER_MAX_EXEC_TIMEOUT_MS", 600_000, 1),
    maxOutputBytes: readInteger(env, "TETHER_MAX_OUTPUT_BYTES", MiB, 1),
    // A cloud job takes 20-60 s to run (more with an image pull); a local process or container a few seconds.
    startTimeoutMs: readInteger(env, "TETHER_START_TIMEOUT_MS", launcher === "local" || launcher === "docker" ? 60_000 : 180_000, 1),
    joinTokenTtlMs: readInteger(env, "TETHER_JOIN_TOKEN_TTL_MS", 120_000, 1),
    heartbeatIntervalMs: readInteger(env, "TETHER_HEARTBEAT_INTERVAL_MS", 5000, 100),
    interruptGraceMs: readInteger(env, "TETHER_INTERRUPT_GRACE_MS", 2000, 0),
    maxUploadBytes: readInteger(env, "TETHER_MAX_UPLOAD_BYTES", 1024 * MiB, 0),
    maxRequestBytes: readInteger(env, "TETHER_MAX_REQUEST_BYTES", 8 * MiB, 1),
    maxClientFrameBytes: readInteger(env, "TETHER_MAX_CLIENT_FRAME_BYTES", MiB, 1),
    slowClientTimeoutMs: readInteger(env, "TETHER_SLOW_CLIENT_TIMEOUT_MS", 15_000, 100),
    eventLogMaxBytes: readInteger(env, "TETHER_EVENT_LOG_MAX_BYTES", 32 * MiB, 64 * 1024),
    executionRetentionS: readInteger(env, "TETHER_EXECUTION_RETENTION_S", 3600, 1),
    logLevel: readLogLevel(env.TETHER_LOG_LEVEL),
    poolSize: readInteger(env, "TETHER_POOL_SIZE", 0, 0, 1000),
    poolPreload: env.TETHER_POOL_PRELOAD?.trim() ? env.TETHER_POOL_PRELOAD : undefined,
    maxConcurrentStarts: readInteger(env, "TETHER_MAX_CONCURRENT_STARTS", 20, 1),
    maxSessionsPerTenant: readInteger(env, "TETHER_MAX_SESSIONS_PER_TENANT", 100, 1),
    idleTimeoutS: readInteger(env, "TETHER_IDLE_TIMEOUT_S", 600, 1),
    maxSessionLifetimeS: readInteger(env, "TETHER_MAX_SESSION_LIFETIME_S", 86_400, 1),
    auth: readAuthConfig(env),
    snapshots: readSnapshotConfig(env, dataDir),
    profiles: readProfiles(env, launcher),
    metricsToken: readMetricsToken(env.TETHER_METRICS_TOKEN),
    agents: readAgentAdaptersConfig(env),
  };
  if (config.defaultExecTimeoutMs > config.maxExecTimeoutMs) {
    throw configInvalid(
      `TETHER_DEFAULT_EXEC_TIMEOUT_MS (${config.defaultExecTimeoutMs}) is larger than TETHER_MAX_EXEC_TIMEOUT_MS (${config.maxExecTimeoutMs}).`,
    );
  }
  if (config.launcher === "azure") config.azure = readAzureConfig(env, config.publicUrl);
  if (config.launcher === "kubernetes") {
    config.kubernetes = readKubernetesConfig(env, config.publicUrl);
    checkKubernetesProfiles(config.profiles.values());
  }
  if (config.launcher === "docker") config.docker = readDockerConfig(env, config.dataDir);
  const cluster = readClusterConfig(env);
  if (cluster && config.launcher === "local" && config.sandbox.mode !== "off") {
    // A sandbox (and the relay its worker dials through) ends with the replica that started it: a
    // failover or a hand-over would lose every session's variables and unsaved files.
    throw configInvalid(
      "TETHER_REDIS_URL with TETHER_LAUNCHER=local needs TETHER_SANDBOX=off: sandboxed workers end with the replica that started them, so a failover would lose their sessions. For a sandboxed cluster use TETHER_LAUNCHER=kubernetes or azure.",
    );
  }
  if (cluster) config.cluster = cluster;
  return config;
}

/** `tenant:key,tenant:key`; a key may itself contain ':' (split at the first one). */
export function parseApiKeys(raw: string | undefined): ApiKeyEntry[] {
  if (raw === undefined || raw.trim() === "") return [];
  const entries: ApiKeyEntry[] = [];
  const seenKeys = new Set<string>();
  for (const [index, item] of raw.split(",").entries()) {
    const part = item.trim();
    const colon = part.indexOf(":");
    const tenant = colon > 0 ? part.slice(0, colon).trim() : "";
    const key = colon > 0 ? part.slice(colon + 1).trim() : "";
    // Never echo the key itself: config errors end up in logs.
    if (!tenant || !key) {
      throw configInvalid(`TETHER_API_KEYS entry ${index + 1} is not 'tenant:key'.`, "Example: TETHER_API_KEYS=alice:secret-a,bob:secret-b");
    }
    if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(tenant)) {
      throw configInvalid(`TETHER_API_KEYS entry ${index + 1}: tenant '${tenant}' may only use letters, digits, '_', '.', '@' and '-'.`);
    }
    if (/\s/.test(key)) throw configInvalid(`TETHER_API_KEYS entry ${index + 1}: the key contains whitespace.`);
    if (seenKeys.has(key)) throw configInvalid(`TETHER_API_KEYS entry ${index + 1} repeats a key used by another entry.`);
    seenKeys.add(key);
    entries.push({ tenant, key });
  }
  return entries;
}

function readPublicUrl(raw: string | undefined): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configInvalid(`TETHER_PUBLIC_URL '${value}' is not a URL.`, "Example: TETHER_PUBLIC_URL=wss://tether.example.com");
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw configInvalid(`TETHER_PUBLIC_URL must start with ws:// or wss://, got '${url.protocol}'.`);
  }
  return value.replace(/\/+$/, "");
}

function readLauncher(raw: string | undefined): LauncherKind {
  const value = raw?.trim() || "local";
  if (value !== "local" && value !== "azure" && value !== "kubernetes" && value !== "docker") {
    throw configInvalid(`TETHER_LAUNCHER '${value}' is not supported; use 'local', 'docker', 'kubernetes' or 'azure'.`);
  }
  return value;
}

const DEFAULT_ARM_ENDPOINT = "https://management.azure.com";

/** TETHER_AZURE_* and TETHER_PUBLIC_URL for the azure launcher; names every missing variable at once. */
function readAzureConfig(env: Env, publicUrl: string | undefined): AzureLauncherConfig {
  const required = ["TETHER_AZURE_SUBSCRIPTION_ID", "TETHER_AZURE_RESOURCE_GROUP", "TETHER_AZURE_JOB_NAME", "TETHER_AZURE_WORKER_IMAGE"] as const;
  const missing: string[] = required.filter((name) => !env[name]?.trim());
  if (!publicUrl) missing.push("TETHER_PUBLIC_URL");
  if (missing.length > 0) {
    throw configInvalid(
      `TETHER_LAUNCHER=azure needs ${missing.join(", ")}.`,
      "TETHER_PUBLIC_URL is the wss:// URL job executions dial back to: they cannot reach the orchestrator's listening address.",
    );
  }
  const subscriptionId = readString(env, "TETHER_AZURE_SUBSCRIPTION_ID", "");
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(subscriptionId)) {
    throw configInvalid(`TETHER_AZURE_SUBSCRIPTION_ID must be a subscription id (a UUID), got '${subscriptionId}'.`);
  }
  const armEndpoint = readArmEndpoint(env.TETHER_AZURE_ARM_ENDPOINT);
  // Workers send their join token, then every execution's code and output, over this URL.
  if (publicUrl?.startsWith("ws://") && !isLocalHost(new URL(armEndpoint).hostname)) {
    throw configInvalid(
      `TETHER_PUBLIC_URL must be wss:// with TETHER_LAUNCHER=azure, got '${publicUrl}'.`,
      "Job executions dial back across the network carrying their join token and all code and output: use TLS. " +
        "ws:// is accepted only with a local or test TETHER_AZURE_ARM_ENDPOINT (localhost, 127.0.0.1, *.localhost, *.test).",
    );
  }
  const cpuRaw = readString(env, "TETHER_AZURE_CPU", "0.5");
  const cpu = Number(cpuRaw);
  if (!/^\d+(\.\d+)?$/.test(cpuRaw) || cpu <= 0) throw configInvalid(`TETHER_AZURE_CPU must be a positive number of vCPUs (e.g. 0.5), got '${cpuRaw}'.`);
  const memory = readString(env, "TETHER_AZURE_MEMORY", "1Gi");
  if (!/^\d+(\.\d+)?Gi$/.test(memory)) throw configInvalid(`TETHER_AZURE_MEMORY must look like '1Gi' or '0.5Gi', got '${memory}'.`);
  return {
    subscriptionId,
    resourceGroup: readString(env, "TETHER_AZURE_RESOURCE_GROUP", ""),
    jobName: readString(env, "TETHER_AZURE_JOB_NAME", ""),
    workerImage: readString(env, "TETHER_AZURE_WORKER_IMAGE", ""),
    cpu,
    memory,
    containerName: readString(env, "TETHER_AZURE_CONTAINER_NAME", "worker"),
    armEndpoint,
    pollIntervalMs: readInteger(env, "TETHER_AZURE_POLL_INTERVAL_MS", 2000, 50),
  };
}

function readArmEndpoint(raw: string | undefined): string {
  const value = raw?.trim() || DEFAULT_ARM_ENDPOINT;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configInvalid(`TETHER_AZURE_ARM_ENDPOINT '${value}' is not a URL.`, `Example: TETHER_AZURE_ARM_ENDPOINT=${DEFAULT_ARM_ENDPOINT}`);
  }
  // The SDK sends bearer tokens over TLS only.
  if (url.protocol !== "https:") throw configInvalid(`TETHER_AZURE_ARM_ENDPOINT must be an https:// URL, got '${value}'.`);
  return value.replace(/\/+$/, "");
}

function readLogLevel(raw: string | undefined): LogLevel {
  const value = raw?.trim() || "info";
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (!level) throw configInvalid(`TETHER_LOG_LEVEL '${value}' is not one of ${LOG_LEVELS.join(", ")}.`);
  return level;
}

/** Splits a command line on whitespace, honouring single and double quotes (no other shell syntax). */
export function splitCommand(raw: string): string[] {
  const out: string[] = [];
  const pattern = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const match of raw.matchAll(pattern)) out.push(match[1] ?? match[2] ?? match[3] ?? "");
  if (out.length === 0) throw configInvalid("TETHER_WORKER_COMMAND is empty.");
  return out;
}

/** The execution timeout to use: the requested one (or the default), never above the maximum. */
export function effectiveExecTimeoutMs(config: Pick<OrchestratorConfig, "defaultExecTimeoutMs" | "maxExecTimeoutMs">, requestedMs: number | undefined): number {
  return Math.min(requestedMs ?? config.defaultExecTimeoutMs, config.maxExecTimeoutMs);
}
