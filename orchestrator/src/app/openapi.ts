import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TetherApp } from "./tether-app.js";
import { WORKER_GATEWAY_PATH } from "../workers/worker-gateway.js";

export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";
const HEALTH_PATH = "/healthz";

/** Routes that are not part of the public API: the worker gateway (workers only) and the docs themselves. */
export function isInternalRoute(url: string): boolean {
  return url === WORKER_GATEWAY_PATH || url === OPENAPI_PATH || url === DOCS_PATH || url.startsWith(`${DOCS_PATH}/`);
}

/**
 * OpenAPI 3.1 generated from the route schemas (@fastify/swagger collects
 * every route registered after it), served at /openapi.json, and an API
 * reference page at /docs (@fastify/swagger-ui: its assets come from the npm
 * package, nothing is fetched from the network; the online validator badge
 * is off). Both without an API key: they describe the API, they hold nothing.
 * Register before any route.
 */
export function installOpenApi(app: TetherApp, version: string): void {
  // @fastify/websocket hides websocket routes from the document (OpenAPI cannot describe the stream); list each upgrade as a GET.
  const websockets: string[] = [];
  app.addHook("onRoute", (route) => {
    if (route.websocket === true && !isInternalRoute(route.url) && route.method === "GET") websockets.push(route.url);
  });
  void app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Tether API",
        version,
        description:
          "Runs code for chat assistants and LLM agents. REST under /v1 (guide: docs/api.md), MCP at /mcp, " +
          "an Azure Container Apps dynamic-sessions compatible API under /dynamic-sessions. Errors are {error:{code,message,hint}}.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "A Tether API key (TETHER_API_KEYS)." } } },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url }) => {
      if (isInternalRoute(url)) return { schema: { ...schema, hide: true }, url };
      // Liveness needs no key.
      if (url === HEALTH_PATH) return { schema: { ...schema, security: [] }, url };
      return { schema, url };
    },
    transformObject: (document) => {
      if (!("openapiObject" in document)) return document.swaggerObject;
      const added: Record<string, unknown> = {};
      for (const url of websockets) added[url.replace(/:([A-Za-z0-9_]+)/g, "{$1}")] = websocketOperation(url);
      document.openapiObject.paths = Object.assign(document.openapiObject.paths ?? {}, added);
      return document.openapiObject;
    },
  });
  void app.register(swaggerUi, { routePrefix: DOCS_PATH, uiConfig: { validatorUrl: null }, logLevel: "warn" });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
}

/** A websocket upgrade as an OpenAPI GET: its path parameters and the 101 answer; the messages are in docs/api.md. */
function websocketOperation(url: string): unknown {
  const parameters = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => ({ name: match[1], in: "path", required: true, schema: { type: "string" } }));
  return {
    get: {
      summary: "Websocket stream (upgrade): execute with live output, input(), interrupt, session phases",
      description: "Send 'Upgrade: websocket'. Browsers may pass the API key as ?token=<key>. The message types are in docs/api.md (The websocket stream).",
      parameters: [...parameters, { name: "token", in: "query", required: false, schema: { type: "string" }, description: "The API key, for browsers (which cannot set headers on a websocket)." }],
      responses: { "101": { description: "Switching Protocols: the stream is open." } },
    },
  };
}
