import { ErrorCodes, tetherError } from "../errors.js";
import type { Principal } from "./principal.js";

/** The route a request matched, as far as scoping goes. */
export interface RouteScopeInfo {
  method: string;
  /** The route's URL pattern, e.g. `/v1/sessions/:id/execute`. */
  url: string | undefined;
  /** The route opted out of session tokens (deleting the session, minting and revoking tokens). */
  denySessionTokens: boolean;
  /** The matched `:id`, if any. */
  sessionId: string | undefined;
}

const SESSION_ROUTE = "/v1/sessions/:id";

/**
 * API keys and OIDC principals reach every route of their tenant. A session
 * token reaches its own session's routes only: `/v1/sessions/:id` and
 * everything below it (routes added there later included), minus the routes
 * that opt out. Anything else is 403 TETHER_ERR_AUTH_SCOPE.
 */
export function assertInScope(principal: Principal, route: RouteScopeInfo): void {
  if (principal.kind !== "session-token") return;
  const sessionRoute = route.url === SESSION_ROUTE || route.url?.startsWith(`${SESSION_ROUTE}/`) === true;
  if (sessionRoute && route.denySessionTokens) {
    throw tetherError(ErrorCodes.AUTH_SCOPE, `A session token may not call ${route.method} ${route.url ?? ""}.`, {
      hint: "Deleting a session and minting or revoking session tokens need the backend's API key (or an OIDC token).",
    });
  }
  if (!sessionRoute || route.sessionId !== principal.sessionId) {
    throw tetherError(ErrorCodes.AUTH_SCOPE, `This session token is valid for session ${principal.sessionId} only.`, {
      hint: `It reaches GET /v1/sessions/${principal.sessionId}, its stream and the routes below it; anything else needs an API key or an OIDC token.`,
    });
  }
}
