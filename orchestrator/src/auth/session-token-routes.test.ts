import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, Launcher } from "../launchers/launcher.js";
import { MemorySessionTokenStore, TOMBSTONE_RETENTION_MS } from "./session-token-store.js";

/** Workers never dial back: sessions stay `starting`, enough for auth and scope. */
const idleLauncher: Launcher = {
  kind: "idle",
  launch: async ({ launchId }) => ({ launchId, exited: new Promise<LaunchExit>(() => {}), stop: async () => {} }),
  stopAll: async () => {},
};

const A = { authorization: "Bearer key-a" };
const B = { authorization: "Bearer key-b" };

describe("session tokens (inject)", () => {
  let app: TetherApp;
  let nowMs: number;
  let mine: string;
  let other: string;

  beforeEach(async () => {
    nowMs = Date.parse("2030-01-01T00:00:00Z");
    const config = loadConfig({ TETHER_API_KEYS: "alice:key-a,bob:key-b", TETHER_LOG_LEVEL: "silent", TETHER_DATA_DIR: "/tmp/tether-unit-unused", TETHER_SESSION_TOKEN_MAX_TTL_S: "7200" });
    const now = () => nowMs;
    app = buildApp(config, { launcher: idleLauncher, auth: { now, sessionTokenStore: new MemorySessionTokenStore(now) } });
    await app.ready();
    mine = app.tether.registry.create("alice", {}).id;
    other = app.tether.registry.create("alice", {}).id;
  });

  afterEach(async () => {
    await app.close();
  });

  async function mint(sessionId = mine, body?: Record<string, unknown>, headers: Record<string, string> = A) {
    return body === undefined
      ? app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/tokens`, headers })
      : app.inject({ method: "POST", url: `/v1/sessions/${sessionId}/tokens`, headers, payload: body });
  }

  async function tokenFor(sessionId = mine): Promise<{ token: string; tokenId: string; headers: Record<string, string> }> {
    const res = await mint(sessionId);
    expect(res.statusCode).toBe(201);
    const { token, tokenId } = res.json();
    return { token, tokenId, headers: { authorization: `Bearer ${token}` } };
  }

  const errorOf = (res: { statusCode: number; json(): { error: { code: string } } }) => ({ status: res.statusCode, code: res.json().error.code });

  it("mints an opaque tst_ token for 15 minutes by default, or for ttlS, not cached", async () => {
    const res = await mint();
    expect(res.statusCode).toBe(201);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json();
    expect(body).toEqual({ token: expect.stringMatching(/^tst_[A-Za-z0-9_-]{43}$/), tokenId: expect.stringMatching(/^stk_[0-9a-f]{24}$/), sessionId: mine, expiresAt: "2030-01-01T00:15:00.000Z" });
    const custom = await mint(mine, { ttlS: 60 });
    expect(custom.json().expiresAt).toBe("2030-01-01T00:01:00.000Z");
    expect(custom.json().token).not.toBe(body.token);
  });

  it("refuses a ttlS above TETHER_SESSION_TOKEN_MAX_TTL_S, below 1, or unknown fields", async () => {
    for (const body of [{ ttlS: 7201 }, { ttlS: 0 }, { ttlS: 1.5 }, { ttl: 60 }]) {
      expect({ body, ...errorOf(await mint(mine, body)) }).toEqual({ body, status: 400, code: ErrorCodes.REQUEST_INVALID });
    }
  });

  it("mints only for the caller's own sessions (404 for another tenant's)", async () => {
    expect(errorOf(await mint(mine, undefined, B))).toEqual({ status: 404, code: ErrorCodes.SESSION_NOT_FOUND });
    expect(errorOf(await mint("ses_nope"))).toEqual({ status: 404, code: ErrorCodes.SESSION_NOT_FOUND });
  });

  it("lets the token reach its own session's routes", async () => {
    const { headers } = await tokenFor();
    const get = await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers });
    expect(get.statusCode).toBe(200);
    expect(get.json().id).toBe(mine);
    // Past authentication: these answer what the session (still starting) says, not 401/403.
    expect(errorOf(await app.inject({ method: "POST", url: `/v1/sessions/${mine}/interrupt`, headers }))).toEqual({ status: 409, code: ErrorCodes.SESSION_NOT_READY });
    expect(errorOf(await app.inject({ method: "POST", url: `/v1/sessions/${mine}/restart`, headers }))).toEqual({ status: 409, code: ErrorCodes.SESSION_NOT_READY });
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}/files/..%2Fx`, headers }))).toEqual({ status: 400, code: ErrorCodes.PATH_ESCAPES_WORKSPACE });
    expect(errorOf(await app.inject({ method: "POST", url: `/v1/sessions/${mine}/execute`, headers, payload: {} }))).toEqual({ status: 400, code: ErrorCodes.REQUEST_INVALID });
  });

  it.each([
    ["GET", "/v1/sessions"],
    ["POST", "/v1/sessions"],
    ["GET", "/v1/pool"],
    ["GET", "/v1/sessions/OTHER"],
    ["POST", "/v1/sessions/OTHER/execute"],
    ["POST", "/v1/sessions/OTHER/interrupt"],
    ["GET", "/v1/sessions/OTHER/files"],
    ["PUT", "/v1/sessions/OTHER/files/a.txt"],
    ["DELETE", "/v1/sessions/MINE"],
    ["POST", "/v1/sessions/MINE/tokens"],
    ["DELETE", "/v1/sessions/MINE/tokens"],
    ["DELETE", "/v1/sessions/MINE/tokens/stk_x"],
  ] as const)("answers %s %s with 403 AUTH_SCOPE for a session token", async (method, path) => {
    const { headers } = await tokenFor();
    const url = path.replace("OTHER", other).replace("MINE", mine);
    const res = await app.inject({ method, url, headers: { ...headers, "content-type": "application/json" }, payload: method === "POST" || method === "PUT" ? "{}" : undefined });
    expect(errorOf(res)).toEqual({ status: 403, code: ErrorCodes.AUTH_SCOPE });
    expect(res.json().error.hint).toBeTruthy();
    // The session was not deleted.
    expect(app.tether.registry.get("alice", mine).id).toBe(mine);
  });

  it("accepts the token as ?token= on no REST route", async () => {
    const { token } = await tokenFor();
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}?token=${token}` }))).toEqual({ status: 401, code: ErrorCodes.AUTH_MISSING });
  });

  it("answers 401 AUTH_EXPIRED once the token's lifetime has passed, then AUTH_INVALID once forgotten", async () => {
    const { headers } = await tokenFor();
    nowMs += 15 * 60 * 1000 - 1;
    expect((await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers })).statusCode).toBe(200);
    nowMs += 1;
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers }))).toEqual({ status: 401, code: ErrorCodes.AUTH_EXPIRED });
    nowMs += TOMBSTONE_RETENTION_MS + 60_000;
    await tokenFor(other); // a write sweeps forgettable records
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers }))).toEqual({ status: 401, code: ErrorCodes.AUTH_INVALID });
  });

  it("revokes one token (401 AUTH_REVOKED), idempotently; an unknown token id is 404", async () => {
    const first = await tokenFor();
    const second = await tokenFor();
    const revoke = await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens/${first.tokenId}`, headers: A });
    expect(revoke.statusCode).toBe(204);
    expect((await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens/${first.tokenId}`, headers: A })).statusCode).toBe(204);
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers: first.headers }))).toEqual({ status: 401, code: ErrorCodes.AUTH_REVOKED });
    expect((await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers: second.headers })).statusCode).toBe(200);
    // A token id of another session, or of nothing: 404 with its own code.
    expect(errorOf(await app.inject({ method: "DELETE", url: `/v1/sessions/${other}/tokens/${second.tokenId}`, headers: A }))).toEqual({ status: 404, code: ErrorCodes.AUTH_TOKEN_NOT_FOUND });
    expect(errorOf(await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens/stk_nope`, headers: A }))).toEqual({ status: 404, code: ErrorCodes.AUTH_TOKEN_NOT_FOUND });
    // Another tenant cannot revoke (the session is not theirs).
    expect(errorOf(await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens/${second.tokenId}`, headers: B }))).toEqual({ status: 404, code: ErrorCodes.SESSION_NOT_FOUND });
  });

  it("revokes all of a session's tokens, counting the live ones, and leaves other sessions' tokens alone", async () => {
    const a = await tokenFor();
    const b = await tokenFor();
    const elsewhere = await tokenFor(other);
    await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens/${a.tokenId}`, headers: A });
    const res = await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}/tokens`, headers: A });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ revoked: 1 });
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers: b.headers }))).toEqual({ status: 401, code: ErrorCodes.AUTH_REVOKED });
    expect((await app.inject({ method: "GET", url: `/v1/sessions/${other}`, headers: elsewhere.headers })).statusCode).toBe(200);
  });

  it("revokes a session's tokens when the session is deleted", async () => {
    const { headers } = await tokenFor();
    expect((await app.inject({ method: "DELETE", url: `/v1/sessions/${mine}`, headers: A })).statusCode).toBe(204);
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers }))).toEqual({ status: 401, code: ErrorCodes.AUTH_REVOKED });
  });

  it("refuses unknown tst_ tokens as invalid, and keeps API keys working alongside", async () => {
    expect(errorOf(await app.inject({ method: "GET", url: `/v1/sessions/${mine}`, headers: { authorization: "Bearer tst_madeup" } }))).toEqual({ status: 401, code: ErrorCodes.AUTH_INVALID });
    expect((await app.inject({ method: "GET", url: "/v1/sessions", headers: A })).statusCode).toBe(200);
  });
});
