import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes, isErrorCode } from "@tether/shared";
import { ProtocolWorkerLauncher } from "../../../test/fakes/protocol-worker.js";
import { loadConfig } from "../config.js";
import { hintFor } from "../error-hints.js";
import { buildApp, type TetherApp } from "./build-app.js";
import { closestName, editDistance } from "./validation-hints.js";

const KEY = "hints-key";
const auth = { authorization: `Bearer ${KEY}` };

describe("closest field names", () => {
  it("measures edit distance", () => {
    expect(editDistance("timeout", "timeoutMs")).toBe(2);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });

  it("suggests the known field a misspelling or a shortened name means, and nothing for an unrelated one", () => {
    const known = ["code", "timeoutMs", "stdin"];
    expect(closestName("timeout", known)).toBe("timeoutMs");
    expect(closestName("timeout_ms", known)).toBe("timeoutMs");
    expect(closestName("TimeoutMS", known)).toBe("timeoutMs");
    expect(closestName("cod", known)).toBe("code");
    expect(closestName("stdinLines", known)).toBe("stdin");
    expect(closestName("language", known)).toBeUndefined();
    expect(closestName("x", known)).toBeUndefined();
    expect(closestName("idleTimeout", ["metadata", "wait", "idleTimeoutS"])).toBe("idleTimeoutS");
  });

  it("has a hint for every error code", () => {
    for (const code of Object.values(ErrorCodes)) expect(hintFor(code, undefined).length, code).toBeGreaterThan(10);
    expect(hintFor(ErrorCodes.INTERNAL, "own hint")).toBe("own hint");
  });
});

describe("error bodies an agent can act on", () => {
  let app: TetherApp;
  let sessionId: string;

  beforeAll(async () => {
    app = buildApp(loadConfig({ TETHER_API_KEYS: `t:${KEY}`, TETHER_LOG_LEVEL: "silent", TETHER_MAX_REQUEST_BYTES: "1024" }), { launcher: new ProtocolWorkerLauncher() });
    // The fake worker dials the address the app listens on.
    await app.listen({ host: "127.0.0.1", port: 0 });
    const created = await app.inject({ method: "POST", url: "/v1/sessions", headers: auth });
    expect(created.statusCode).toBe(201);
    sessionId = created.json<{ id: string }>().id;
  });

  afterAll(async () => {
    await app.close();
  });

  it("names an unknown body field and the closest known one", async () => {
    const res = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/execute`, headers: auth, payload: { code: "1", timeout: 5000 } });
    expect(res.statusCode).toBe(400);
    const { error } = res.json<{ error: { code: string; message: string; hint: string } }>();
    expect(error.code).toBe(ErrorCodes.REQUEST_INVALID);
    expect(error.message).toContain("`timeout`");
    expect(error.hint).toContain("Did you mean `timeoutMs`?");
    expect(error.hint).toContain("`code`, `timeoutMs`, `stdin`");

    const session = await app.inject({ method: "POST", url: "/v1/sessions", headers: auth, payload: { idleTimeout: 60 } });
    expect(session.json<{ error: { hint: string } }>().error.hint).toContain("Did you mean `idleTimeoutS`?");
    const unrelated = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/execute`, headers: auth, payload: { code: "1", language: "python" } });
    expect(unrelated.json<{ error: { hint: string } }>().error.hint).toContain("Remove `language`.");
  });

  it("names a missing field and a wrong type", async () => {
    const missing = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/execute`, headers: auth, payload: { timeoutMs: 5 } });
    expect(missing.json<{ error: { message: string; hint: string } }>().error).toMatchObject({ message: expect.stringContaining("required field `code`"), hint: expect.stringContaining("Add `code`.") });
    const wrongType = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/execute`, headers: auth, payload: { code: "1", timeoutMs: "soon" } });
    expect(wrongType.json<{ error: { message: string } }>().error.message).toContain("`timeoutMs` in the body must be integer");
  });

  it("gives every error path of the REST surface a code, a message and a hint", async () => {
    const cases: { name: string; request: InjectOptions; status: number; code: string }[] = [
      { name: "no key", request: { method: "GET", url: "/v1/sessions" }, status: 401, code: ErrorCodes.AUTH_MISSING },
      { name: "wrong key", request: { method: "GET", url: "/v1/sessions", headers: { authorization: "Bearer nope" } }, status: 401, code: ErrorCodes.AUTH_INVALID },
      { name: "unknown route", request: { method: "GET", url: "/v2/nothing", headers: auth }, status: 404, code: ErrorCodes.ROUTE_NOT_FOUND },
      { name: "unknown session", request: { method: "GET", url: "/v1/sessions/ses_nope", headers: auth }, status: 404, code: ErrorCodes.SESSION_NOT_FOUND },
      { name: "bad JSON", request: { method: "POST", url: "/v1/sessions", headers: { ...auth, "content-type": "application/json" }, payload: "{" }, status: 400, code: ErrorCodes.REQUEST_MALFORMED_JSON },
      { name: "not JSON", request: { method: "POST", url: "/v1/sessions", headers: { ...auth, "content-type": "text/csv" }, payload: "a,b" }, status: 415, code: ErrorCodes.REQUEST_UNSUPPORTED_MEDIA_TYPE },
      { name: "too large", request: { method: "POST", url: `/v1/sessions/${sessionId}/execute`, headers: auth, payload: { code: "x".repeat(2048) } }, status: 413, code: ErrorCodes.REQUEST_TOO_LARGE },
      { name: "absolute path", request: { method: "GET", url: `/v1/sessions/${sessionId}/files//etc/passwd`, headers: auth }, status: 400, code: ErrorCodes.PATH_ESCAPES_WORKSPACE },
      { name: "backslash path", request: { method: "GET", url: `/v1/sessions/${sessionId}/files/a%5Cb`, headers: auth }, status: 400, code: ErrorCodes.PATH_INVALID },
      { name: "missing file", request: { method: "GET", url: `/v1/sessions/${sessionId}/files/nope.txt`, headers: auth }, status: 404, code: ErrorCodes.FILE_NOT_FOUND },
      { name: "bad percent-encoding", request: { method: "GET", url: "/v1/sessions/%E0%A4%A", headers: auth }, status: 400, code: ErrorCodes.REQUEST_INVALID },
      { name: "foreign MCP origin", request: { method: "POST", url: "/mcp", headers: { ...auth, origin: "http://evil.example" }, payload: {} }, status: 403, code: ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED },
      { name: "dynamic sessions without identifier", request: { method: "GET", url: "/dynamic-sessions/files", headers: auth }, status: 400, code: ErrorCodes.REQUEST_INVALID },
      { name: "unknown execution", request: { method: "GET", url: "/dynamic-sessions/executions/x?identifier=abcd", headers: auth }, status: 404, code: ErrorCodes.EXEC_UNKNOWN_REQUEST },
    ];
    for (const { name, request, status, code } of cases) {
      const res = await app.inject(request);
      expect(res.statusCode, name).toBe(status);
      const body = res.json<{ error?: { code?: unknown; message?: unknown; hint?: unknown } }>();
      expect(body.error?.code, name).toBe(code);
      expect(isErrorCode(body.error?.code), name).toBe(true);
      expect(typeof body.error?.message, name).toBe("string");
      expect(typeof body.error?.hint === "string" && body.error.hint.length > 10, `${name}: hint ${String(body.error?.hint)}`).toBe(true);
    }
  });

  it("refuses session tokens on /mcp and /dynamic-sessions (both create sessions), with a hint", async () => {
    const minted = await app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/tokens`, headers: auth, payload: {} });
    expect(minted.statusCode).toBe(201);
    const token = minted.json<{ token: string }>().token;
    const bearer = { authorization: `Bearer ${token}` };
    for (const request of [
      { method: "POST" as const, url: "/mcp", headers: bearer, payload: { jsonrpc: "2.0", id: 1, method: "initialize", params: {} } },
      { method: "GET" as const, url: "/dynamic-sessions/files?identifier=abcd", headers: bearer },
    ]) {
      const res = await app.inject(request);
      expect(res.statusCode, request.url).toBe(403);
      expect(res.json<{ error: { code: string; hint: string } }>().error).toMatchObject({ code: ErrorCodes.AUTH_SCOPE, hint: expect.any(String) });
    }
  });
});
