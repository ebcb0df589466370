import { randomUUID } from "node:crypto";
import path from "node:path";
import type { AddressInfo, Socket } from "node:net";
import websocket from "@fastify/websocket";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { AppContext } from "./app-context.js";
import { ApiKeyAuthenticator, redactUrl } from "./auth.js";
import type { ApiKeyEntry, OrchestratorConfig } from "./config.js";
import { ErrorCodes, TetherError, tetherError } from "./errors.js";
import { JoinTokenStore } from "./join-tokens.js";
import type { Launcher } from "./launchers/launcher.js";
import { LocalProcessLauncher } from "./launchers/local-process.js";
import { registerClientStream } from "./routes/client-stream.js";
import { registerExecuteRoutes } from "./routes/execute.js";
import { registerFileRoutes } from "./routes/files.js";
import { registerHealthRoutes } from "./routes/health.js";
import { WarmPool } from "./pool/warm-pool.js";
import { registerPoolRoutes } from "./routes/pool.js";
import { registerSessionRoutes } from "./routes/sessions.js";
import { LaunchedWorker, LaunchTable } from "./sessions/launched-worker.js";
import { SessionRegistry } from "./sessions/session-registry.js";
import { StartLimiter } from "./sessions/start-limiter.js";
import { LocalDirectorySnapshotStore } from "./snapshots/local-snapshot-store.js";
import { WORKER_GATEWAY_PATH, registerWorkerGateway } from "./worker-gateway.js";

/** How long sessions get to stop gracefully when the orchestrator shuts down. */
const SHUTDOWN_SESSION_GRACE_MS = 15_000;
/**
 * Sockets still open this long after close began are destroyed: a websocket
 * peer that never answers the close handshake (one not reading, such as a
 * worker paused for a slow client) would otherwise hold close() for ws's 30 s
 * close timeout, and a half-open connection forever.
 */
const SHUTDOWN_SOCKET_GRACE_MS = 20_000;

export interface BuildAppOptions {
  /** Replaces the launcher TETHER_LAUNCHER names (tests use fakes); a function gets the app's logger. */
  launcher?: Launcher | ((logger: Logger) => Launcher);
  /** Interpreter passed to workers as TETHER_PYTHON (startOrchestrator probes it); defaults to config.python. */
  python?: string;
  /** API keys to use instead of config.apiKeys (startOrchestrator passes the generated one). */
  apiKeys?: readonly ApiKeyEntry[];
  /** How long after close begins any socket still open is destroyed (default SHUTDOWN_SOCKET_GRACE_MS). */
  shutdownSocketGraceMs?: number;
}

/** Worker websocket frames carry file chunks and plots: well above anything a client may send. */
const MIN_WS_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/**
 * Builds the orchestrator's fastify app without listening: usable with
 * inject(). Workers are launched only when a session is created, and dial
 * the address the app listens on (or TETHER_PUBLIC_URL).
 */
export function buildApp(config: OrchestratorConfig, options: BuildAppOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Keys and tokens never reach the log: not in headers, not in `?token=`.
      redact: ["req.headers.authorization"],
      serializers: {
        req: (request: { method: string; url: string; ip?: string }) => ({ method: request.method, url: redactUrl(request.url), remoteAddress: request.ip }),
      },
    },
    bodyLimit: config.maxRequestBytes,
    // Strict bodies: unknown fields and wrong types are refused, not stripped or coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  const logger = app.log as unknown as Logger;
  const apiKeys = options.apiKeys ?? config.apiKeys;
  const python = options.python ?? config.python;
  const launcher =
    typeof options.launcher === "function" ? options.launcher(logger) : options.launcher ?? new LocalProcessLauncher({ command: config.workerCommand, workspacesDir: path.join(config.dataDir, "workspaces"), logger });
  const joinTokens = new JoinTokenStore(config.joinTokenTtlMs);
  const launches = new LaunchTable();
  const workerDeps = {
    launcher,
    joinTokens,
    launches,
    logger,
    orchestratorUrl: () => `${config.publicUrl ?? derivePublicUrl(app)}${WORKER_GATEWAY_PATH}`,
    workerEnv: {
      ...(python ? { TETHER_PYTHON: python } : {}),
      TETHER_INTERRUPT_GRACE_MS: String(config.interruptGraceMs),
      // A silent worker would leave nothing to explain a failed start with.
      TETHER_LOG_LEVEL: config.logLevel === "silent" ? "warn" : config.logLevel,
    },
    startTimeoutMs: config.startTimeoutMs,
  };
  const newLaunchId = () => `lch_${randomUUID().replaceAll("-", "")}`;
  const limiter = new StartLimiter(config.maxConcurrentStarts);
  const pool =
    config.poolSize > 0
      ? new WarmPool({
          targetSize: config.poolSize,
          limiter,
          createWorker: () => new LaunchedWorker(newLaunchId(), null, workerDeps, config.poolPreload),
          logger,
        })
      : undefined;
  const snapshots = new LocalDirectorySnapshotStore(path.join(config.dataDir, "snapshots"));
  const registry = new SessionRegistry({
    logger,
    interruptGraceMs: config.interruptGraceMs,
    limiter,
    pool,
    snapshots,
    createWorker: (sessionId) => new LaunchedWorker(newLaunchId(), sessionId, workerDeps),
    defaultIdleTimeoutS: config.idleTimeoutS,
    maxLifetimeMs: config.maxSessionLifetimeS * 1000,
    maxSessionsPerTenant: config.maxSessionsPerTenant,
  });
  const context: AppContext = { config, registry, joinTokens, launcher, pool, snapshots, auth: new ApiKeyAuthenticator(apiKeys) };
  app.decorate("tether", context);
  app.decorateRequest("tenant", "");

  // Before the websocket plugin's own preClose (which drops every socket):
  // workers get a `shutdown` while their connection still stands.
  const openSockets = new Set<Socket>();
  app.server.on("connection", (socket: Socket) => {
    openSockets.add(socket);
    socket.once("close", () => openSockets.delete(socket));
  });
  app.addHook("preClose", async () => {
    const forceClose = setTimeout(() => {
      for (const socket of openSockets) socket.destroy();
    }, options.shutdownSocketGraceMs ?? SHUTDOWN_SOCKET_GRACE_MS);
    forceClose.unref();
    // The pool first: it would replace the workers the launcher is about to stop.
    await pool?.close();
    // Sessions stop gracefully (shutdown message, snapshot in progress) within a
    // bound; whatever is still running then is killed by the launcher, so a
    // SIGTERM always ends.
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => (graceTimer = setTimeout(() => resolve("timeout"), SHUTDOWN_SESSION_GRACE_MS)));
    const outcome = await Promise.race([registry.stopAll("orchestrator shutting down"), graceOver]);
    clearTimeout(graceTimer);
    if (outcome === "timeout") app.log.warn({ graceMs: SHUTDOWN_SESSION_GRACE_MS }, "sessions still stopping at shutdown; killing their workers");
    await launcher.stopAll();
  });

  // Pool workers dial the address the app listens on.
  app.addHook("onListen", async () => pool?.start());

  installBodyParsing(app, config);
  installErrorHandling(app);

  void app.register(websocket, { options: { maxPayload: Math.max(MIN_WS_MAX_PAYLOAD_BYTES, config.maxClientFrameBytes * 4) } });
  void app.register(async (root) => {
    registerHealthRoutes(root);
    registerWorkerGateway(root, { joinTokens, launches, heartbeatIntervalMs: config.heartbeatIntervalMs, logger });
    // Everything else under /v1 needs an API key.
    await root.register(async (api) => {
      api.addHook("onRequest", async (request) => {
        request.tenant = context.auth.authenticate(request, request.routeOptions.config.allowQueryToken === true);
      });
      registerSessionRoutes(api, context);
      registerExecuteRoutes(api, context);
      registerClientStream(api, context);
      registerPoolRoutes(api, context);
      await api.register(async (files) => registerFileRoutes(files, context));
    });
  });
  return app;
}

function installBodyParsing(app: FastifyInstance, config: OrchestratorConfig): void {
  // Our own JSON parser: an empty body is "no body" (POST /v1/sessions takes an optional one),
  // and bad JSON gets its own code.
  app.removeContentTypeParser("application/json");
  // JSON routes take JSON only: other types are 415, not a string that fails the schema.
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("application/json", { parseAs: "string", bodyLimit: config.maxRequestBytes }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(tetherError(ErrorCodes.REQUEST_MALFORMED_JSON, `The request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}

function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | TetherError, request, reply) => {
    const tether = error instanceof TetherError ? error : fromFastifyError(error);
    if (tether.statusCode >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ code: tether.code }, "request refused");
    if (tether.retryAfterS !== undefined) void reply.header("retry-after", String(tether.retryAfterS));
    return reply.code(tether.statusCode).send(tether.toBody());
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(tetherError(ErrorCodes.ROUTE_NOT_FOUND, `No route ${request.method} ${redactUrl(request.url)}.`).toBody()),
  );
}

/** Maps fastify's own errors (validation, parsing, limits) to stable codes. */
function fromFastifyError(error: FastifyError): TetherError {
  if (error.validation) return tetherError(ErrorCodes.REQUEST_INVALID, `Invalid request: ${error.message}.`);
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return tetherError(ErrorCodes.REQUEST_TOO_LARGE, "The request body is too large.", { hint: "The limit is TETHER_MAX_REQUEST_BYTES." });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return tetherError(ErrorCodes.REQUEST_UNSUPPORTED_MEDIA_TYPE, "Send JSON bodies with 'Content-Type: application/json'.");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return tetherError(ErrorCodes.REQUEST_MALFORMED_JSON, error.message);
    default:
      break;
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new TetherError(ErrorCodes.REQUEST_INVALID, error.message, { statusCode: status });
  return new TetherError(ErrorCodes.INTERNAL, "Internal error.", { statusCode: 500, cause: error });
}

/** ws://<listening address>, for workers when TETHER_PUBLIC_URL is unset. */
function derivePublicUrl(app: FastifyInstance): string {
  const address = app.server.address() as AddressInfo | string | null;
  if (!address || typeof address === "string") {
    throw tetherError(ErrorCodes.CONFIG_INVALID, "The orchestrator is not listening on a TCP port; set TETHER_PUBLIC_URL.");
  }
  return `ws://${connectableHost(address.address)}:${address.port}`;
}

/** A listening host as a local client dials it in a URL: a wildcard becomes 127.0.0.1, an IPv6 address gets brackets. */
export function connectableHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}
