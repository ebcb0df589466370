import type { Logger } from "pino";
import { ensureApiKeyFile } from "./api-key-file.js";
import { buildApp, connectableHost, type TetherApp } from "./app/build-app.js";
import type { ApiKeyEntry, OrchestratorConfig } from "./config.js";
import { ErrorCodes, TetherError, tetherError } from "./errors.js";
import { AzureAcaJobsLauncher, type AzureClientOverrides } from "./launchers/azure-aca-jobs.js";
import { DockerLauncher } from "./launchers/docker.js";
import { KubernetesJobsLauncher } from "./launchers/kubernetes-jobs.js";
import type { Launcher } from "./launchers/launcher.js";
import { preflightSandbox } from "./launchers/sandbox/sandbox-preflight.js";
import { sandboxContext, sandboxedCommand } from "./launchers/sandbox/sandbox-setup.js";
import { probePython, type PythonRuntime } from "./python-runtime.js";
import { sandboxSummary, type SandboxSummary } from "./sandbox-summary.js";
import { RedisClusterStore } from "./store/redis-store.js";

/** At start, Redis must answer within this, or the start fails with STORE_UNAVAILABLE. */
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

/** Tenant of the key generated when TETHER_API_KEYS is unset. */
export const DEFAULT_TENANT = "default";

export interface RunningOrchestrator {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The interpreter workers use. */
  python: PythonRuntime;
  /** How local workers are confined, and the warnings to print at every start (TETHER_SANDBOX=off, TETHER_SANDBOX_NETWORK=on). */
  sandbox: SandboxSummary;
  /** Where the key came from; `key` is set only when this start generated it (print it once). */
  apiKey: { source: "env" } | { source: "file"; path: string; created: boolean; key?: string };
  app: TetherApp;
  /** Stops every worker (and what it started), then the server. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** TETHER_LAUNCHER=azure only: a credential and pipeline options instead of the SDK defaults (tests: a local fake of ARM). */
  azure?: AzureClientOverrides;
  /** Overrides TETHER_LAUNCHER with this launcher (benchmarks: a fleet of in-process synthetic workers). */
  launcher?: (logger: Logger) => Launcher;
  /** Export Node's process metrics on /metrics too (server.ts: one orchestrator per process). */
  processMetrics?: boolean;
}

/** Resolves the API key and the Python runtime, builds the app, reconciles the launcher's workers and listens. */
export async function startOrchestrator(config: OrchestratorConfig, options: StartOptions = {}): Promise<RunningOrchestrator> {
  let apiKeys: readonly ApiKeyEntry[] = config.apiKeys;
  let apiKey: RunningOrchestrator["apiKey"] = { source: "env" };
  if (apiKeys.length === 0) {
    const file = await ensureApiKeyFile(config.dataDir);
    apiKeys = [{ tenant: DEFAULT_TENANT, key: file.key }];
    apiKey = { source: "file", path: file.path, created: file.created, ...(file.created ? { key: file.key } : {}) };
  }
  let python: PythonRuntime;
  let workerPython: string | undefined;
  if (config.launcher !== "local") {
    // Workers run their image and probe its Python themselves; a TETHER_PYTHON set here is passed on.
    python = { python: config.python ?? "probed by each worker in its image" };
    workerPython = config.python;
  } else if (config.sandbox.mode === "on") {
    // Before the Python probe, which runs in a sandbox too: what it finds there is what workers get.
    const context = sandboxContext(config.sandbox, config.workerCommand);
    await preflightSandbox(context, config.dataDir);
    python = await probePython(config.workerCommand, config.python, (argv) => sandboxedCommand(context, argv)).catch((error: unknown) => {
      if (!(error instanceof TetherError) || error.code !== ErrorCodes.RUNTIME_PYTHON_NOT_FOUND) throw error;
      const where = "The probe ran inside the sandbox, which sees /usr, /bin, /lib* and a few /etc files: an interpreter elsewhere (a venv) needs TETHER_SANDBOX_RO_BINDS=<its directory>.";
      throw tetherError(error.code, error.message, { hint: `${error.hint ?? ""} ${where}`.trim(), cause: error });
    });
    workerPython = python.python;
  } else {
    // A configured TETHER_PYTHON is checked too: a wrong one should stop the start here, not fail every session later.
    python = await probePython(config.workerCommand, config.python);
    workerPython = python.python;
  }
  const sandbox = sandboxSummary(config);
  const app = buildApp(config, { apiKeys, python: workerPython, launcher: selectLauncher(config, options), processMetrics: options.processMetrics ?? false });
  try {
    // A snapshot store that cannot be reached would fail every scale to zero: refuse to start instead.
    await app.tether.snapshots.init();
    const { cluster, store } = app.tether;
    if (store instanceof RedisClusterStore) await store.ready(REDIS_CONNECT_TIMEOUT_MS);
    // Before listening: no session exists yet, so every worker the launcher finds is an orphan. Not in a
    // cluster: other replicas' sessions are alive, and their workers with them.
    if (!cluster) await reconcileWorkers(app);
    if (cluster) {
      // The router goes in front before the first request can arrive.
      await app.ready();
      cluster.route(app.server);
    }
    await app.listen({ host: config.host, port: config.port });
    await cluster?.start();
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  app.log.info({ port, python: python.python, sandbox: sandbox.description }, "orchestrator listening");
  for (const warning of sandbox.warnings) app.log.warn({ sandbox: config.sandbox.mode }, warning);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${connectableHost(config.host)}:${port}`,
    port,
    python,
    sandbox,
    apiKey,
    app,
    close() {
      // buildApp's preClose hook stops the pool, the sessions and the launcher's workers first.
      closing ??= app.close();
      return closing;
    },
  };
}

/** The launcher TETHER_LAUNCHER names; undefined leaves buildApp's default (local processes). */
function selectLauncher(config: OrchestratorConfig, options: StartOptions): ((logger: Logger) => Launcher) | undefined {
  if (options.launcher) return options.launcher;
  switch (config.launcher) {
    case "local":
      return undefined;
    case "azure": {
      const azure = config.azure;
      if (!azure) throw new TetherError(ErrorCodes.CONFIG_INVALID, "TETHER_LAUNCHER=azure but the Azure settings were not loaded (use loadConfig).");
      return (logger) => new AzureAcaJobsLauncher({ config: azure, logger: logger.child({ launcher: "azure" }), ...(options.azure ? { client: options.azure } : {}) });
    }
    case "kubernetes": {
      const kubernetes = config.kubernetes;
      if (!kubernetes) throw new TetherError(ErrorCodes.CONFIG_INVALID, "TETHER_LAUNCHER=kubernetes but the Kubernetes settings were not loaded (use loadConfig).");
      return (logger) => new KubernetesJobsLauncher({ config: kubernetes, logger: logger.child({ launcher: "kubernetes" }) });
    }
    case "docker": {
      const docker = config.docker;
      if (!docker) throw new TetherError(ErrorCodes.CONFIG_INVALID, "TETHER_LAUNCHER=docker but the Docker settings were not loaded (use loadConfig).");
      return (logger) => new DockerLauncher({ config: docker, logger: logger.child({ launcher: "docker" }) });
    }
    default: {
      const unreachable: never = config.launcher;
      return unreachable;
    }
  }
}

/** Launcher codes that mean it cannot work at all: refuse to start rather than fail every session. */
const FATAL_RECONCILE_CODES: ReadonlySet<string> = new Set([ErrorCodes.LAUNCH_FORBIDDEN, ErrorCodes.LAUNCH_NOT_FOUND, ErrorCodes.LAUNCH_UNAUTHENTICATED]);

/** Stops workers a previous orchestrator left running. Throttling or an outage only warns: reconcile runs again next start. */
async function reconcileWorkers(app: TetherApp): Promise<void> {
  const { launcher, readiness } = app.tether;
  if (!launcher.reconcile) {
    readiness.reconciled(`the ${launcher.kind} launcher has nothing to reconcile`);
    return;
  }
  try {
    const { stopped } = await launcher.reconcile();
    app.log.info({ launcher: launcher.kind, stopped: stopped.length }, "reconciled workers");
    readiness.reconciled(`stopped ${stopped.length} orphaned worker(s) at start`);
  } catch (error) {
    if (error instanceof TetherError && FATAL_RECONCILE_CODES.has(error.code)) throw error;
    app.log.warn({ err: error, launcher: launcher.kind }, "could not reconcile workers; orphans stay until the next start");
    // The launcher works (the error was not fatal): serving beats waiting for the next start.
    readiness.reconciled(`reconcile failed, orphans stay until the next start: ${error instanceof Error ? error.message : String(error)}`);
  }
}
