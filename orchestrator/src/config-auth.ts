import { isLocalHost, readInteger, readString, type Env } from "./config-readers.js";
import { configInvalid } from "./errors.js";

/** Asymmetric JWS algorithms only: `none` and HS* (a shared secret, or a public key misused as one) never verify. */
export const OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"] as const;
export type OidcAlgorithm = (typeof OIDC_ALGORITHMS)[number];

/** Bearer JWTs from an OpenID Connect provider (Microsoft Entra ID, …), enabled by TETHER_OIDC_ISSUER. */
export interface OidcConfig {
  /** TETHER_OIDC_ISSUER: must equal the tokens' `iss` exactly (Entra ID v2: `https://login.microsoftonline.com/<tenant id>/v2.0`). */
  issuer: string;
  /** TETHER_OIDC_AUDIENCE, comma-separated: a token's `aud` must name one of them (Entra ID: the API's client id or `api://…`). */
  audiences: readonly string[];
  /** TETHER_OIDC_JWKS_URL; undefined: `jwks_uri` of `<issuer>/.well-known/openid-configuration`, fetched on first use. */
  jwksUrl: string | undefined;
  /** TETHER_OIDC_ALGORITHMS, default `RS256,ES256`. */
  algorithms: readonly OidcAlgorithm[];
  /** TETHER_OIDC_CLOCK_SKEW_S, default 60: tolerance on `exp` and `nbf`. */
  clockSkewS: number;
  /** TETHER_OIDC_TENANT_CLAIM, default `tid` (Entra ID's tenant id): the claim whose value is the Tether tenant. */
  tenantClaim: string;
  /** TETHER_OIDC_REQUIRED_ROLE: when set, the `roles` array claim must contain it. */
  requiredRole: string | undefined;
  /** TETHER_OIDC_REQUIRED_SCOPE: when set, the space-separated `scp` (or `scope`) claim must contain it. */
  requiredScope: string | undefined;
  /** TETHER_OIDC_FETCH_TIMEOUT_MS, default 5000: discovery and JWKS requests give up after this. */
  fetchTimeoutMs: number;
  /** TETHER_OIDC_JWKS_COOLDOWN_MS, default 30000: after a JWKS fetch, an unknown `kid` waits this long before the next one. */
  jwksCooldownMs: number;
}

export interface AuthConfig {
  /** TETHER_SESSION_TOKEN_TTL_S, default 900: lifetime of a session token minted without `ttlS`. */
  sessionTokenTtlS: number;
  /** TETHER_SESSION_TOKEN_MAX_TTL_S, default 3600: the longest `ttlS` a mint may ask for. */
  sessionTokenMaxTtlS: number;
  /** TETHER_CORS_ORIGINS, comma-separated origins (or `*`); empty (default): no CORS headers, no Origin check. */
  corsOrigins: readonly string[];
  /** Set when TETHER_OIDC_ISSUER is. */
  oidc: OidcConfig | undefined;
}

export function readAuthConfig(env: Env): AuthConfig {
  const sessionTokenMaxTtlS = readInteger(env, "TETHER_SESSION_TOKEN_MAX_TTL_S", 3600, 1, 30 * 86_400);
  const sessionTokenTtlS = readInteger(env, "TETHER_SESSION_TOKEN_TTL_S", Math.min(900, sessionTokenMaxTtlS), 1, 30 * 86_400);
  if (sessionTokenTtlS > sessionTokenMaxTtlS) {
    throw configInvalid(`TETHER_SESSION_TOKEN_TTL_S (${sessionTokenTtlS}) is larger than TETHER_SESSION_TOKEN_MAX_TTL_S (${sessionTokenMaxTtlS}).`);
  }
  return { sessionTokenTtlS, sessionTokenMaxTtlS, corsOrigins: parseCorsOrigins(env.TETHER_CORS_ORIGINS), oidc: readOidcConfig(env) };
}

/** `https://app.example.com,http://localhost:5173` or `*`: each an origin (scheme, host, port; no path). */
export function parseCorsOrigins(raw: string | undefined): string[] {
  const out: string[] = [];
  for (const item of (raw ?? "").split(",")) {
    const value = item.trim().replace(/\/+$/, "");
    if (value === "") continue;
    if (value === "*") {
      out.push(value);
      continue;
    }
    const url = parseUrl(value);
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== value.toLowerCase()) {
      throw configInvalid(`TETHER_CORS_ORIGINS entry '${value}' is not an origin.`, "An origin is scheme://host[:port] without a path, e.g. https://chat.example.com; '*' allows any.");
    }
    out.push(url.origin);
  }
  return out;
}

function readOidcConfig(env: Env): OidcConfig | undefined {
  const issuer = env.TETHER_OIDC_ISSUER?.trim();
  if (!issuer) {
    const stray = Object.keys(env).filter((name) => name.startsWith("TETHER_OIDC_") && env[name]?.trim());
    if (stray.length > 0) throw configInvalid(`${stray.join(", ")} ${stray.length === 1 ? "is" : "are"} set but TETHER_OIDC_ISSUER is not.`);
    return undefined;
  }
  checkFetchableUrl("TETHER_OIDC_ISSUER", issuer);
  const audiences = (env.TETHER_OIDC_AUDIENCE ?? "").split(",").map((a) => a.trim()).filter((a) => a !== "");
  if (audiences.length === 0) {
    throw configInvalid("TETHER_OIDC_ISSUER is set but TETHER_OIDC_AUDIENCE is not.", "Name the audience your tokens are issued for (Entra ID: the API app's client id or its 'api://…' URI).");
  }
  const jwksUrl = env.TETHER_OIDC_JWKS_URL?.trim() || undefined;
  if (jwksUrl) checkFetchableUrl("TETHER_OIDC_JWKS_URL", jwksUrl);
  const tenantClaim = readString(env, "TETHER_OIDC_TENANT_CLAIM", "tid");
  if (!/^[A-Za-z0-9_:.-]{1,64}$/.test(tenantClaim)) throw configInvalid(`TETHER_OIDC_TENANT_CLAIM '${tenantClaim}' is not a claim name.`);
  return {
    issuer,
    audiences,
    jwksUrl,
    algorithms: readAlgorithms(env.TETHER_OIDC_ALGORITHMS),
    clockSkewS: readInteger(env, "TETHER_OIDC_CLOCK_SKEW_S", 60, 0, 3600),
    tenantClaim,
    requiredRole: env.TETHER_OIDC_REQUIRED_ROLE?.trim() || undefined,
    requiredScope: env.TETHER_OIDC_REQUIRED_SCOPE?.trim() || undefined,
    fetchTimeoutMs: readInteger(env, "TETHER_OIDC_FETCH_TIMEOUT_MS", 5000, 1, 60_000),
    jwksCooldownMs: readInteger(env, "TETHER_OIDC_JWKS_COOLDOWN_MS", 30_000, 0, 3_600_000),
  };
}

function readAlgorithms(raw: string | undefined): OidcAlgorithm[] {
  const names = (raw ?? "RS256,ES256").split(",").map((a) => a.trim()).filter((a) => a !== "");
  const out: OidcAlgorithm[] = [];
  for (const name of names) {
    const known = OIDC_ALGORITHMS.find((alg) => alg === name);
    if (!known) throw configInvalid(`TETHER_OIDC_ALGORITHMS: '${name}' is not allowed; use some of ${OIDC_ALGORITHMS.join(", ")}.`, "Symmetric (HS*) and 'none' are never accepted.");
    out.push(known);
  }
  if (out.length === 0) throw configInvalid("TETHER_OIDC_ALGORITHMS is empty.");
  return out;
}

/** Keys are fetched over TLS; plain http only from this machine or a test name (tests run a local JWKS server). */
function checkFetchableUrl(name: string, value: string): void {
  const url = parseUrl(value);
  if (!url) throw configInvalid(`${name} '${value}' is not a URL.`);
  if (url.protocol === "https:" || (url.protocol === "http:" && isLocalHost(url.hostname))) return;
  throw configInvalid(`${name} must be an https:// URL, got '${value}'.`, "http:// is accepted only for localhost, 127.0.0.1, *.localhost and *.test.");
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
