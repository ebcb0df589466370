import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { ensureApiKeyFile } from "./api-key-file.js";
import { buildApp } from "./app.js";
import type { ApiKeyEntry, OrchestratorConfig } from "./config.js";
import { probePython, type PythonRuntime } from "./python-runtime.js";

/** Tenant of the key generated when TETHER_API_KEYS is unset. */
export const DEFAULT_TENANT = "default";

export interface RunningOrchestrator {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The interpreter workers use. */
  python: PythonRuntime;
  /** Where the key came from; `key` is set only when this start generated it (print it once). */
  apiKey: { source: "env" } | { source: "file"; path: string; created: boolean; key?: string };
  app: FastifyInstance;
  /** Stops every worker (and what it started), then the server. */
  close(): Promise<void>;
}

/** Resolves the API key and the Python runtime, builds the app and listens. */
export async function startOrchestrator(config: OrchestratorConfig): Promise<RunningOrchestrator> {
  let apiKeys: readonly ApiKeyEntry[] = config.apiKeys;
  let apiKey: RunningOrchestrator["apiKey"] = { source: "env" };
  if (apiKeys.length === 0) {
    const file = await ensureApiKeyFile(config.dataDir);
    apiKeys = [{ tenant: DEFAULT_TENANT, key: file.key }];
    apiKey = { source: "file", path: file.path, created: file.created, ...(file.created ? { key: file.key } : {}) };
  }
  const python: PythonRuntime = config.python ? { python: config.python } : await probePython(config.workerCommand);
  const app = buildApp(config, { apiKeys, python: python.python });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    throw error;
  }
  const port = (app.server.address() as AddressInfo).port;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
  app.log.info({ port, python: python.python }, "orchestrator listening");
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    python,
    apiKey,
    app,
    close() {
      closing ??= (async () => {
        const { registry, launcher, pool } = app.tether;
        // The pool first: it would replace the workers stopped below.
        await pool?.close();
        await registry.stopAll("orchestrator shutting down");
        await launcher.stopAll();
        await app.close();
      })();
      return closing;
    },
  };
}
