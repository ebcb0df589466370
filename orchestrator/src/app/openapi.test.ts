import { Validator } from "@seriousme/openapi-schema-validator";
import { ExecuteBody } from "@tether/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProtocolWorkerLauncher } from "../../../test/fakes/protocol-worker.js";
import { loadConfig } from "../config.js";
import { buildApp, type TetherApp } from "./build-app.js";
import { isInternalRoute } from "./openapi.js";

/** fastify's `/v1/sessions/:id/files/*` as OpenAPI writes it: `/v1/sessions/{id}/files/{*}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/\*$/, "{*}");
}

describe("the OpenAPI document and the /docs page", () => {
  let app: TetherApp;
  const routes: { method: string; url: string }[] = [];

  beforeAll(async () => {
    app = buildApp(loadConfig({ TETHER_API_KEYS: "t:openapi-key", TETHER_LOG_LEVEL: "silent" }), { launcher: new ProtocolWorkerLauncher() });
    // Added before ready: the route plugins register when the app loads, after this hook is in place.
    app.addHook("onRoute", (route) => {
      for (const method of [route.method].flat()) if (method !== "HEAD") routes.push({ method, url: route.url });
    });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
  });

  it("is a valid OpenAPI 3.1 document, served without an API key", async () => {
    const response = await app.inject({ method: "GET", url: "/openapi.json" });
    expect(response.statusCode).toBe(200);
    const document = response.json<Record<string, unknown>>();
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("documents every public route with its method, and none of the internal ones", async () => {
    const document = (await app.inject({ method: "GET", url: "/openapi.json" })).json<{ paths: Record<string, Record<string, unknown>> }>();
    const publicRoutes = routes.filter((route) => !isInternalRoute(route.url));
    expect(publicRoutes.length).toBeGreaterThan(30);
    const missing = publicRoutes.filter((route) => document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()] === undefined);
    expect(missing).toEqual([]);
    expect(Object.keys(document.paths)).not.toContain("/v1/workers/connect");
    for (const route of ["/v1/sessions", "/mcp", "/dynamic-sessions/code/execute", "/dynamic-sessions/executions", "/healthz"]) expect(Object.keys(document.paths)).toContain(route);
  });

  it("describes bodies from the route schemas: ExecuteBody's fields", async () => {
    const document = (await app.inject({ method: "GET", url: "/openapi.json" })).json<{
      paths: Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } } }>;
    }>();
    const properties = document.paths["/v1/sessions/{id}/execute"]?.post?.requestBody?.content?.["application/json"]?.schema?.properties;
    expect(Object.keys(properties ?? {}).sort()).toEqual(Object.keys(ExecuteBody.properties).sort());
    expect(Object.keys(properties ?? {})).toContain("timeoutMs");
  });

  it("serves the reference page at /docs from local assets only", async () => {
    const page = await app.inject({ method: "GET", url: "/docs" });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("swagger-ui");
    const referenced = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? "");
    expect(referenced.length).toBeGreaterThan(0);
    expect(referenced.filter((url) => /^(https?:)?\/\//.test(url))).toEqual([]);
    const initializer = await app.inject({ method: "GET", url: "/docs/static/swagger-initializer.js" });
    expect(initializer.statusCode).toBe(200);
    expect(initializer.body).toContain("validatorUrl: null");
    const bundle = await app.inject({ method: "GET", url: "/docs/static/swagger-ui-bundle.js" });
    expect(bundle.statusCode).toBe(200);
  });
});
