import { createServer } from "node:net";
import { SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeOidcProvider } from "../../../test/fakes/fake-oidc-provider.js";
import { buildApp, type TetherApp } from "../app/build-app.js";
import { loadConfig } from "../config.js";
import { ErrorCodes } from "../errors.js";
import type { LaunchExit, Launcher } from "../launchers/launcher.js";

/** Workers never dial back: sessions stay `starting`, enough for auth. */
const idleLauncher: Launcher = {
  kind: "idle",
  launch: async ({ launchId }) => ({ launchId, exited: new Promise<LaunchExit>(() => {}), stop: async () => {} }),
  stopAll: async () => {},
};

const AUDIENCE = "api://tether-test";
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("OIDC bearer tokens (Entra ID shaped provider)", () => {
  let provider: FakeOidcProvider;
  let rsa: string;
  let ec: string;
  const apps: TetherApp[] = [];

  beforeAll(async () => {
    provider = await FakeOidcProvider.start();
    rsa = await provider.addKey("RS256");
    ec = await provider.addKey("ES256");
  });

  afterEach(async () => {
    provider.mode = "ok";
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await provider.close();
  });

  async function appWith(env: Record<string, string> = {}): Promise<TetherApp> {
    const config = loadConfig({
      TETHER_API_KEYS: "alice:key-a",
      TETHER_LOG_LEVEL: "silent",
      TETHER_DATA_DIR: "/tmp/tether-unit-unused",
      TETHER_OIDC_ISSUER: provider.issuer,
      TETHER_OIDC_AUDIENCE: AUDIENCE,
      ...env,
    });
    const app = buildApp(config, { launcher: idleLauncher });
    apps.push(app);
    await app.ready();
    return app;
  }

  async function call(app: TetherApp, token: string, url = "/v1/sessions") {
    const res = await app.inject({ method: "GET", url, headers: { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, code: res.statusCode >= 400 ? (res.json().error.code as string) : undefined, body: res.json(), headers: res.headers };
  }

  it("accepts RS256 and ES256 tokens, takes the tenant from tid, and isolates tenants", async () => {
    const app = await appWith();
    const mine = app.tether.registry.create(provider.directoryId, {}).id;
    const theirs = app.tether.registry.create("alice", {}).id;
    for (const kid of [rsa, ec]) {
      const listed = await call(app, await provider.sign(kid, AUDIENCE));
      expect(listed.status).toBe(200);
      expect(listed.body.sessions.map((s: { id: string }) => s.id)).toEqual([mine]);
    }
    const foreign = await call(app, await provider.sign(rsa, AUDIENCE), `/v1/sessions/${theirs}`);
    expect(foreign).toMatchObject({ status: 404, code: ErrorCodes.SESSION_NOT_FOUND });
    // Another directory's token (same keys, other tid) sees nothing of this one.
    const other = await call(app, await provider.sign(rsa, AUDIENCE, { tid: "other-directory" }), `/v1/sessions/${mine}`);
    expect(other).toMatchObject({ status: 404, code: ErrorCodes.SESSION_NOT_FOUND });
    // The JWKS was fetched once (after discovery) for all of these.
    expect(provider.jwksFetches()).toBe(1);
  });

  it("refuses expired, not-yet-valid, wrong-audience, wrong-issuer, exp-less and unknown-key tokens with 401", async () => {
    const app = await appWith();
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, string][] = [
      ["expired", await provider.sign(rsa, AUDIENCE, { exp: now - 120, nbf: now - 900, iat: now - 900 }), ErrorCodes.AUTH_EXPIRED],
      ["not yet valid", await provider.sign(rsa, AUDIENCE, { nbf: now + 300 }), ErrorCodes.AUTH_INVALID],
      ["wrong audience", await provider.sign(rsa, "api://someone-else"), ErrorCodes.AUTH_INVALID],
      ["wrong issuer", await provider.sign(rsa, AUDIENCE, { iss: "https://login.microsoftonline.com/other/v2.0" }), ErrorCodes.AUTH_INVALID],
      ["no exp", await provider.sign(rsa, AUDIENCE, { exp: undefined }), ErrorCodes.AUTH_INVALID],
      ["unknown kid", await new SignJWT({ iss: provider.issuer, aud: AUDIENCE, tid: provider.directoryId, exp: now + 600 })
        .setProtectedHeader({ alg: "RS256", kid: "kid-nobody" })
        .sign((await (await import("jose")).generateKeyPair("RS256")).privateKey), ErrorCodes.AUTH_INVALID],
    ];
    for (const [what, token, code] of cases) {
      const res = await call(app, token);
      expect({ what, status: res.status, code: res.code }).toEqual({ what, status: 401, code });
      expect(res.body.error.hint ?? res.body.error.message).toBeTruthy();
    }
  });

  it("tolerates the configured clock skew", async () => {
    const app = await appWith({ TETHER_OIDC_CLOCK_SKEW_S: "60" });
    const now = Math.floor(Date.now() / 1000);
    expect((await call(app, await provider.sign(rsa, AUDIENCE, { exp: now - 30 }))).status).toBe(200);
    expect((await call(app, await provider.sign(rsa, AUDIENCE, { nbf: now + 30 }))).status).toBe(200);
  });

  it("refuses alg none, a tampered payload, and HS256 signed with the provider's public key", async () => {
    const app = await appWith();
    const good = await provider.sign(rsa, AUDIENCE);
    const [header, payload, signature] = good.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
    const tampered = `${header}.${b64({ ...claims, tid: "someone-else" })}.${signature}`;
    const confused = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: rsa }).sign(new TextEncoder().encode(await provider.publicKeyPem(rsa)));
    for (const [what, token] of [["alg none", unsigned], ["tampered", tampered], ["HS256 with the public key", confused]] as const) {
      const res = await call(app, token);
      expect({ what, status: res.status, code: res.code }).toEqual({ what, status: 401, code: ErrorCodes.AUTH_INVALID });
    }
  });

  it("answers 403 for a token without the tenant claim, or without the required role or scope", async () => {
    const app = await appWith({ TETHER_OIDC_REQUIRED_ROLE: "Tether.Use", TETHER_OIDC_REQUIRED_SCOPE: "sessions" });
    const ok = { roles: ["Reader", "Tether.Use"], scp: "openid sessions" };
    expect((await call(app, await provider.sign(rsa, AUDIENCE, ok))).status).toBe(200);
    for (const [what, claims] of [
      ["no tid", { ...ok, tid: undefined }],
      ["tid not a string", { ...ok, tid: 42 }],
      ["no role", { ...ok, roles: ["Reader"] }],
      ["roles not an array", { ...ok, roles: "Tether.Use" }],
      ["no scope", { ...ok, scp: "openid sessions.read" }],
    ] as const) {
      const res = await call(app, await provider.sign(rsa, AUDIENCE, claims));
      expect({ what, status: res.status, code: res.code }).toEqual({ what, status: 403, code: ErrorCodes.AUTH_FORBIDDEN });
    }
    // `scope` (space-separated) counts where `scp` is absent.
    expect((await call(app, await provider.sign(rsa, AUDIENCE, { roles: ["Tether.Use"], scope: "sessions" }))).status).toBe(200);
  });

  it("picks up a rotated key: a new kid in the JWKS after the keys were cached", async () => {
    const app = await appWith({ TETHER_OIDC_JWKS_COOLDOWN_MS: "0" });
    expect((await call(app, await provider.sign(rsa, AUDIENCE))).status).toBe(200);
    const rotated = await provider.addKey("RS256", { publish: false });
    const early = await call(app, await provider.sign(rotated, AUDIENCE));
    expect(early).toMatchObject({ status: 401, code: ErrorCodes.AUTH_INVALID });
    provider.publish(rotated);
    expect((await call(app, await provider.sign(rotated, AUDIENCE))).status).toBe(200);
  });

  it("within the cooldown an unknown kid does not refetch the JWKS (no fetch flood from made-up kids)", async () => {
    const app = await appWith({ TETHER_OIDC_JWKS_URL: provider.jwksUrl });
    const before = provider.jwksFetches();
    expect((await call(app, await provider.sign(rsa, AUDIENCE))).status).toBe(200);
    const stranger = await provider.addKey("ES256", { publish: false });
    for (let i = 0; i < 5; i++) expect((await call(app, await provider.sign(stranger, AUDIENCE))).status).toBe(401);
    expect(provider.jwksFetches() - before).toBe(1);
  });

  it("answers 503 AUTH_UNAVAILABLE with Retry-After when the provider is down, errors, or hangs (bounded by the fetch timeout)", async () => {
    const token = await provider.sign(rsa, AUDIENCE);
    const closedPort = await freePort();
    const down = await appWith({ TETHER_OIDC_JWKS_URL: `http://127.0.0.1:${closedPort}/keys` });
    expect(await call(down, token)).toMatchObject({ status: 503, code: ErrorCodes.AUTH_UNAVAILABLE, headers: { "retry-after": "5" } });

    provider.mode = "error";
    const erroring = await appWith();
    expect(await call(erroring, token)).toMatchObject({ status: 503, code: ErrorCodes.AUTH_UNAVAILABLE });
    // Discovery is retried once the provider is back.
    provider.mode = "ok";
    expect((await call(erroring, token)).status).toBe(200);

    provider.mode = "hang";
    const hanging = await appWith({ TETHER_OIDC_FETCH_TIMEOUT_MS: "300" });
    const startedAt = Date.now();
    expect(await call(hanging, token)).toMatchObject({ status: 503, code: ErrorCodes.AUTH_UNAVAILABLE });
    expect(Date.now() - startedAt).toBeLessThan(3000);
  });

  it("lets an OIDC principal mint a session token for its tenant's session", async () => {
    const app = await appWith();
    const session = app.tether.registry.create(provider.directoryId, {}).id;
    const res = await app.inject({ method: "POST", url: `/v1/sessions/${session}/tokens`, headers: { authorization: `Bearer ${await provider.sign(ec, AUDIENCE)}` } });
    expect(res.statusCode).toBe(201);
    const got = await app.inject({ method: "GET", url: `/v1/sessions/${session}`, headers: { authorization: `Bearer ${res.json().token}` } });
    expect(got.statusCode).toBe(200);
  });

  it("refuses JWTs when OIDC is not configured, and API keys keep working when it is", async () => {
    const app = await appWith();
    expect((await call(app, "key-a")).status).toBe(200);
    const plain = buildApp(loadConfig({ TETHER_API_KEYS: "alice:key-a", TETHER_LOG_LEVEL: "silent" }), { launcher: idleLauncher });
    apps.push(plain);
    expect(await call(plain, await provider.sign(rsa, AUDIENCE))).toMatchObject({ status: 401, code: ErrorCodes.AUTH_INVALID });
  });
});

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
