import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import websocket from "@fastify/websocket";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { pino, type DestinationStream } from "pino";
import { WORKER_MAX_PAYLOAD_BYTES } from "@tether/shared";
import { serializeRequest } from "../auth/redact.js";
import type { OrchestratorConfig } from "../config.js";
import { errorBody } from "../error-hints.js";
import { ErrorCodes, tetherError } from "../errors.js";
import { registerAgentAdapters } from "../adapters/agent-adapters.js";
import { registerClientStream } from "../routes/client-stream.js";
import { registerExecuteRoutes } from "../routes/execute.js";
import { registerExecutionRoutes } from "../routes/executions.js";
import { registerFileRoutes } from "../routes/files.js";
import { registerHealthRoutes } from "../routes/health.js";
import { registerMetricsRoute } from "../routes/metrics.js";
import { Readiness } from "../metrics/readiness.js";
import { registerPlaygroundRoutes } from "../routes/playground.js";
import { registerPoolRoutes } from "../routes/pool.js";
import { registerSessionTokenRoutes } from "../routes/session-tokens.js";
import { registerSessionRoutes } from "../routes/sessions.js";
import { WORKER_GATEWAY_PATH, registerWorkerGateway } from "../workers/worker-gateway.js";
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from "fastify";
import type { AppContext } from "../routes/route-context.js";
import { compose, type CompositionOptions } from "./composition.js";
import { installBodyParsing, installErrorHandling } from "./error-handler.js";
import { createAuth, installAuthentication, installCors, type AuthOptions } from "./install-auth.js";
import { installOpenApi } from "./openapi.js";
import { installShutdown } from "./shutdown.js";
import type { TetherApp } from "./tether-app.js";

export type { TetherApp } from "./tether-app.js";

export interface BuildAppOptions extends CompositionOptions {
  /** How long after close begins any socket still open is destroyed (default SHUTDOWN_SOCKET_GRACE_MS). */
  shutdownSocketGraceMs?: number;
  /** Session token store and clock (default: memory, Date.now). */
  auth?: AuthOptions;
  /** Where log lines go (default stdout); tests capture them. */
  logDestination?: DestinationStream;
}

/** Longest raw (percent-encoded) path parameter: a 1024-character path of 3-byte characters, encoded. */
const MAX_PARAM_LENGTH = 10 * 1024;

/** The router's own refusals, answered like every other error. */
function refuseUnroutable(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const typed = tetherError(ErrorCodes.REQUEST_INVALID, routerErrorMessage(error.code), { hint: "Percent-encode the path (UTF-8), and keep file paths under 1024 characters." });
  request.log.info({ code: typed.code, fastifyCode: error.code }, "request refused by the router");
  void reply.code(400).send(errorBody(typed));
}

function routerErrorMessage(code: string): string {
  switch (code) {
    case "FST_ERR_BAD_URL":
      return "The URL is malformed (invalid percent-encoding).";
    case "FST_ERR_MAX_PARAM_LENGTH":
      return `A path parameter is longer than ${MAX_PARAM_LENGTH} characters.`;
    default:
      return `The request could not be routed (${code}).`;
  }
}

/** The version the OpenAPI document states. */
const API_VERSION = "0.1.0";

/**
 * Builds the orchestrator's fastify app without listening: usable with
 * inject(). Workers are launched only when a session is created, and dial
 * the address the app listens on (or TETHER_PUBLIC_URL).
 */
export function buildApp(config: OrchestratorConfig, options: BuildAppOptions = {}): TetherApp {
  const loggerOptions = {
    level: config.logLevel,
    // Keys and tokens never reach the log: requests are logged without headers, and
    // query parameters the app reads as `token` (however encoded) are masked.
    redact: ["req.headers.authorization"],
    serializers: { req: serializeRequest },
  };
  const logger = options.logDestination ? pino(loggerOptions, options.logDestination) : pino(loggerOptions);
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.maxRequestBytes,
    // A workspace path may be 1024 characters, percent-encoded up to ~9 KiB (fastify's default is 100).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals (bad percent-encoding, an over-long param) in our error shape too.
    frameworkErrors: refuseUnroutable,
    // Strict bodies: unknown fields and wrong types are refused, not stripped or coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  const parts = compose(
    config,
    options,
    logger,
    () => `${config.publicUrl ?? derivePublicUrl(app)}${WORKER_GATEWAY_PATH}`,
    () => config.cluster?.replicaUrl ?? deriveReplicaUrl(app),
  );
  const launcherHealth = parts.launcher.health?.bind(parts.launcher);
  const readiness = new Readiness({
    listening: () => app.server.listening,
    launcherHealth,
    // Local workers need the interpreter probed at start; other launchers' workers use their image's.
    python: config.launcher === "local" ? (options.python ?? config.python) : null,
  });
  const context: AppContext = {
    config,
    registry: parts.registry,
    joinTokens: parts.joinTokens,
    launcher: parts.launcher,
    pool: parts.pool,
    snapshots: parts.snapshots,
    cluster: parts.cluster,
    store: parts.store,
    readiness,
    metrics: parts.metrics,
    ...createAuth(config, options.apiKeys ?? config.apiKeys, options.auth ?? {}),
  };
  // Session tokens die with their session.
  parts.registry.onRemoved((session) => {
    context.sessionTokens.revokeSession(session.id).catch((error: unknown) => logger.warn({ err: error, sessionId: session.id }, "could not revoke the session's tokens"));
  });
  app.decorate("tether", context);
  app.decorateRequest("tenant", "");
  app.decorateRequest("principal", null);
  app.addHook("preClose", async () => readiness.shuttingDown());
  installShutdown(app, parts, options.shutdownSocketGraceMs);
  // Pool workers dial the address the app listens on.
  app.addHook("onListen", async () => {
    parts.pool?.start();
    parts.sweeper.start();
  });
  installBodyParsing(app, config);
  installErrorHandling(app);
  // Before any route: the OpenAPI document collects the routes registered after it.
  installOpenApi(app, API_VERSION);

  installCors(app, context.origins);
  // The server-wide ceiling; each socket gets its own limit at once (ws-limits.ts): a client stream its
  // frame limit, a worker 64 KiB until its hello is verified.
  void app.register(websocket, { options: { maxPayload: Math.max(WORKER_MAX_PAYLOAD_BYTES, config.maxClientFrameBytes * 2) } });
  void app.register(async (plugin) => {
    const root = plugin.withTypeProvider<TypeBoxTypeProvider>();
    registerHealthRoutes(root, readiness, parts.cluster?.replicaId);
    registerMetricsRoute(root, { metrics: parts.metrics, token: config.metricsToken });
    registerPlaygroundRoutes(root, config.playgroundDir);
    const cluster = parts.cluster;
    registerWorkerGateway(root, {
      joinTokens: parts.joinTokens,
      launches: parts.launches,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      logger,
      ...(cluster
        ? { keepResumeTokens: true, onJoined: (connection, binding) => cluster.workerJoined(connection, binding), takeover: (socket, resume) => cluster.takeover(socket, resume) }
        : {}),
    });
    // Everything else under /v1 needs a credential: an API key, a session token or an OIDC token.
    await root.register(async (scope) => {
      const api = scope.withTypeProvider<TypeBoxTypeProvider>();
      installAuthentication(api, context);
      registerSessionRoutes(api, context);
      registerSessionTokenRoutes(api, context);
      registerExecuteRoutes(api, context);
      registerExecutionRoutes(api, context);
      registerClientStream(api, context);
      registerPoolRoutes(api, context);
      await api.register(async (files) => registerFileRoutes(files.withTypeProvider<TypeBoxTypeProvider>(), context));
      await api.register(async (agents) => registerAgentAdapters(agents.withTypeProvider<TypeBoxTypeProvider>(), context));
    });
  });
  return app;
}

/** ws://<listening address>, for workers when TETHER_PUBLIC_URL is unset. */
function derivePublicUrl(app: TetherApp): string {
  const address: AddressInfo | string | null = app.server.address();
  if (!address || typeof address === "string") {
    throw tetherError(ErrorCodes.CONFIG_INVALID, "The orchestrator is not listening on a TCP port; set TETHER_PUBLIC_URL.");
  }
  return `ws://${connectableHost(address.address)}:${address.port}`;
}

/** http://<listening address> for other replicas when TETHER_REPLICA_URL is unset: every address means the host name. */
function deriveReplicaUrl(app: TetherApp): string {
  const address: AddressInfo | string | null = app.server.address();
  if (!address || typeof address === "string") {
    throw tetherError(ErrorCodes.CONFIG_INVALID, "The orchestrator is not listening on a TCP port; set TETHER_REPLICA_URL.");
  }
  const host = address.address === "0.0.0.0" || address.address === "::" ? hostname() : connectableHost(address.address);
  return `http://${host}:${address.port}`;
}

/** A listening host as a local client dials it in a URL: a wildcard becomes 127.0.0.1, an IPv6 address gets brackets. */
export function connectableHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}
