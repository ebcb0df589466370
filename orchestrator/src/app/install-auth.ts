import cors from "@fastify/cors";
import { stringField } from "@tether/shared";
import { ApiKeys } from "../auth/api-keys.js";
import { Authenticator } from "../auth/authenticator.js";
import { OidcVerifier } from "../auth/oidc.js";
import { OriginPolicy } from "../auth/origin.js";
import { describePrincipal } from "../auth/principal.js";
import { assertInScope } from "../auth/scope.js";
import { MemorySessionTokenStore, type SessionTokenStore } from "../auth/session-token-store.js";
import { SessionTokens } from "../auth/session-tokens.js";
import type { ApiKeyEntry, OrchestratorConfig } from "../config.js";
import type { RouteScope } from "../routes/route-context.js";
import type { TetherApp } from "./tether-app.js";

export interface AuthOptions {
  /** Where session tokens live (default: this process's memory). */
  sessionTokenStore?: SessionTokenStore;
  /** Milliseconds since the epoch for session token lifetimes (tests). */
  now?: () => number;
}

/** The authentication parts of one app. */
export interface AuthParts {
  auth: Authenticator;
  sessionTokens: SessionTokens;
  origins: OriginPolicy;
}

export function createAuth(config: OrchestratorConfig, apiKeys: readonly ApiKeyEntry[], options: AuthOptions): AuthParts {
  const now = options.now ?? Date.now;
  const sessionTokens = new SessionTokens(options.sessionTokenStore ?? new MemorySessionTokenStore(now), {
    defaultTtlS: config.auth.sessionTokenTtlS,
    maxTtlS: config.auth.sessionTokenMaxTtlS,
    now,
  });
  const oidc = config.auth.oidc ? new OidcVerifier(config.auth.oidc) : undefined;
  return { auth: new Authenticator(new ApiKeys(apiKeys), sessionTokens, oidc), sessionTokens, origins: new OriginPolicy(config.auth.corsOrigins) };
}

/**
 * CORS for the origins of TETHER_CORS_ORIGINS (none: no CORS headers at all).
 * Preflights are answered before authentication: they carry no credential.
 */
export function installCors(app: TetherApp, origins: OriginPolicy): void {
  if (!origins.enabled) return;
  void app.register(cors, {
    origin: origins.corsOrigin,
    methods: ["GET", "POST", "PUT", "DELETE"],
    allowedHeaders: ["Authorization", "Content-Type"],
    exposedHeaders: ["Retry-After", "Content-Length"],
    // Bearer credentials only: browsers never send cookies to Tether.
    credentials: false,
    maxAge: 600,
  });
}

/**
 * Authenticates every route of `scope` (the client API): a websocket upgrade's
 * Origin first, then the credential, then the principal's reach (session
 * tokens: their own session only). Sets `request.principal` and `request.tenant`.
 */
export function installAuthentication(scope: RouteScope, parts: AuthParts): void {
  scope.addHook("onRequest", async (request, reply) => {
    if (request.ws) parts.origins.assertUpgradeAllowed(request.headers.origin, request.headers.host);
    const config = request.routeOptions.config;
    const principal = await parts.auth.authenticate(request, config.allowQueryToken === true);
    assertInScope(principal, {
      method: request.method,
      url: request.routeOptions.url,
      denySessionTokens: config.denySessionTokens === true,
      sessionId: stringField(request.params, "id"),
    });
    request.principal = principal;
    request.tenant = principal.tenant;
    // Who, never with what: "request completed" and the routes' lines name the principal.
    request.log = reply.log = request.log.child(describePrincipal(principal));
  });
}

