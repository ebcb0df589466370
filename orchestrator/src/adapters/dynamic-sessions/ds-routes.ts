import { Type } from "@sinclair/typebox";
import { ErrorResponse } from "@tether/shared";
import { ErrorCodes, TetherError, tetherError } from "../../errors.js";
import type { AppContext, RouteScope } from "../../routes/route-context.js";
import { DS_PATH, type DsContext } from "./ds-context.js";
import { registerDsExecuteRoutes } from "./ds-execute-routes.js";
import { ExecutionRecords } from "./ds-executions.js";
import { registerDsFileRoutes } from "./ds-file-routes.js";
import { adapterSessionHooks } from "../common/adapter-sessions.js";
import { IdentifiedSessions } from "./ds-sessions.js";
import { DsMetadataQuery, DsQuery, MAX_IDENTIFIER_LENGTH, PoolMetadata, SessionResource } from "./ds-schemas.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };
const tags = ["dynamic-sessions"];

/**
 * An Azure Container Apps dynamic sessions compatible data plane at
 * /dynamic-sessions, for the clients that speak it (LangChain, Semantic
 * Kernel, AutoGen, LlamaIndex): point their pool management endpoint at
 * `<orchestrator URL>/dynamic-sessions` and give them the Tether API key as
 * the bearer token. Register in the authenticated scope, in its own plugin
 * (it installs its own body parsers). Errors keep Tether's body, which has
 * Azure's `{error: {code, message}}` shape, plus `x-ms-error-code`.
 */
export function registerDynamicSessionsRoutes(scope: RouteScope, context: AppContext): void {
  const ds: DsContext = {
    app: context,
    sessions: new IdentifiedSessions({ registry: context.registry, hooks: adapterSessionHooks(context), bindings: context.store.adapters, cluster: context.cluster }),
    executions: new ExecutionRecords(context.config.agents.dynamicSessionsResultTtlS * 1000),
  };
  const startedAt = new Date().toISOString();
  scope.addHook("preClose", async () => {
    ds.executions.close();
    await ds.sessions.closeAll("the orchestrator is shutting down");
  });
  installBodyParsers(scope);
  scope.addHook("onError", async (_request, reply, error) => {
    const code = error instanceof TetherError ? error.code : "validation" in error && error.validation ? ErrorCodes.REQUEST_INVALID : undefined;
    if (code) void reply.header("x-ms-error-code", code);
  });

  const cluster = context.cluster;
  if (cluster) {
    // Before the body is read: a request for an identifier whose session another replica serves goes there whole.
    scope.addHook("onRequest", async (request, reply) => {
      const identifier = (request.query as { identifier?: unknown } | undefined)?.identifier;
      // One the route's schema refuses is answered here (400) and claims nothing in the store.
      if (typeof identifier !== "string" || identifier === "" || identifier.length > MAX_IDENTIFIER_LENGTH) return;
      const route = await ds.sessions.place(request.tenant, identifier, createsSession(request.method, request.routeOptions.url));
      if (route.kind === "local") return;
      request.log.info({ identifier, to: route.kind === "forward" ? route.replica.replicaId : route.error.code }, "dynamic-sessions request passed to the replica serving its session");
      reply.hijack();
      cluster.pass(request.raw, reply.raw, route);
    });
  }

  registerDsExecuteRoutes(scope, ds);
  registerDsFileRoutes(scope, ds);

  scope.get(
    `${DS_PATH}/session`,
    { schema: { tags, summary: "The identifier's session (404 when it has none)", querystring: DsQuery, response: { 200: SessionResource, ...errors } } },
    async (request) => {
      const entry = await ds.sessions.find(request.tenant, request.query.identifier);
      const session = entry?.slot.peek();
      if (!entry || !session) {
        throw tetherError(ErrorCodes.SESSION_NOT_FOUND, `No session with identifier '${request.query.identifier}'.`, { hint: "Any call with a new identifier creates its session (e.g. POST code/execute)." });
      }
      return {
        identifier: entry.identifier,
        createdAt: entry.createdAt.toISOString(),
        lastAccessedAt: session.lastActivityAt.toISOString(),
        expireAt: new Date(session.lastActivityAt.getTime() + session.idleTimeoutS * 1000).toISOString(),
        etag: entry.etag,
      };
    },
  );
  scope.delete(
    `${DS_PATH}/session`,
    { schema: { tags, summary: "Delete the identifier's session: worker, kernel and files (204 also when there was none)", querystring: DsQuery, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      await ds.sessions.delete(request.tenant, request.query.identifier);
      return reply.code(204).send(null);
    },
  );
  scope.get(
    `${DS_PATH}/metadata`,
    { schema: { tags, summary: "The pool's runtime (from a running session of the tenant when there is one)", querystring: DsMetadataQuery, response: { 200: PoolMetadata, ...errors } } },
    async (request) => {
      const kernel = context.registry.list(request.tenant).find((session) => session.kernel)?.kernel;
      const version = kernel?.languageVersion ?? "3";
      return {
        runtimes: [{ name: "python", version }],
        preInstalledPackages: [],
        jupyterKernel: { name: kernel?.name ?? "python3", version },
        createdAt: startedAt,
        lastUpdatedAt: startedAt,
      };
    },
  );
}

/** Whether a request starts the identifier's session when it has none (reading or deleting one does not). */
function createsSession(method: string, route: string | undefined): boolean {
  if (route === `${DS_PATH}/session` || route === `${DS_PATH}/metadata`) return false;
  return !(method === "GET" && route === `${DS_PATH}/executions/:id`);
}

/**
 * JSON as JSON, except a body that starts with a multipart boundary: Semantic
 * Kernel Python uploads multipart bodies labelled application/json, so the
 * upload routes get the raw bytes and find the boundary themselves. Multipart
 * and any other type arrive as bytes.
 */
function installBodyParsers(scope: RouteScope): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body, done) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const text = bytes.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    if (text.startsWith("--")) return done(null, bytes);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(tetherError(ErrorCodes.REQUEST_MALFORMED_JSON, `The request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`), undefined);
    }
  });
  scope.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
}
