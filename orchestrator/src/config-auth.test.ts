import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { ErrorCodes, TetherError } from "./errors.js";

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof TetherError && error.code === ErrorCodes.CONFIG_INVALID) return error.message;
    throw error;
  }
  throw new Error("loadConfig accepted the environment");
}

const ISSUER = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0";

describe("auth configuration", () => {
  it("defaults: 15 min session tokens (1 h at most), no CORS, no OIDC", () => {
    expect(loadConfig({}).auth).toEqual({ sessionTokenTtlS: 900, sessionTokenMaxTtlS: 3600, corsOrigins: [], oidc: undefined });
    expect(loadConfig({ TETHER_SESSION_TOKEN_MAX_TTL_S: "300" }).auth.sessionTokenTtlS).toBe(300);
  });

  it("refuses a default session token lifetime above the maximum", () => {
    expect(refusal({ TETHER_SESSION_TOKEN_TTL_S: "7200" })).toMatch(/TETHER_SESSION_TOKEN_TTL_S.*TETHER_SESSION_TOKEN_MAX_TTL_S/);
  });

  it("reads OIDC with Entra ID defaults", () => {
    expect(loadConfig({ TETHER_OIDC_ISSUER: ISSUER, TETHER_OIDC_AUDIENCE: "api://tether, 11111111-2222-3333-4444-555555555555" }).auth.oidc).toEqual({
      issuer: ISSUER,
      audiences: ["api://tether", "11111111-2222-3333-4444-555555555555"],
      jwksUrl: undefined,
      algorithms: ["RS256", "ES256"],
      clockSkewS: 60,
      tenantClaim: "tid",
      requiredRole: undefined,
      requiredScope: undefined,
      fetchTimeoutMs: 5000,
      jwksCooldownMs: 30_000,
    });
  });

  it("fails fast on incomplete or unsafe OIDC settings, naming the variable", () => {
    expect(refusal({ TETHER_OIDC_ISSUER: ISSUER })).toMatch(/TETHER_OIDC_AUDIENCE/);
    expect(refusal({ TETHER_OIDC_AUDIENCE: "api://tether" })).toMatch(/TETHER_OIDC_AUDIENCE is set but TETHER_OIDC_ISSUER is not/);
    expect(refusal({ TETHER_OIDC_ISSUER: "http://idp.example.com/", TETHER_OIDC_AUDIENCE: "a" })).toMatch(/TETHER_OIDC_ISSUER must be an https/);
    expect(refusal({ TETHER_OIDC_ISSUER: ISSUER, TETHER_OIDC_AUDIENCE: "a", TETHER_OIDC_JWKS_URL: "ftp://x" })).toMatch(/TETHER_OIDC_JWKS_URL/);
    for (const alg of ["HS256", "none", "RS256,HS512"]) expect(refusal({ TETHER_OIDC_ISSUER: ISSUER, TETHER_OIDC_AUDIENCE: "a", TETHER_OIDC_ALGORITHMS: alg })).toMatch(/TETHER_OIDC_ALGORITHMS/);
    expect(refusal({ TETHER_OIDC_ISSUER: ISSUER, TETHER_OIDC_AUDIENCE: "a", TETHER_OIDC_TENANT_CLAIM: "a b" })).toMatch(/TETHER_OIDC_TENANT_CLAIM/);
    // Local issuers may be plain http (tests run a provider on 127.0.0.1).
    expect(loadConfig({ TETHER_OIDC_ISSUER: "http://127.0.0.1:9/x/v2.0", TETHER_OIDC_AUDIENCE: "a" }).auth.oidc?.issuer).toBe("http://127.0.0.1:9/x/v2.0");
  });
});
