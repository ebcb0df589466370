import { ErrorCodes, tetherError } from "../errors.js";
import type { ApiKeys } from "./api-keys.js";
import { readCredential, shapeOf } from "./credential.js";
import type { OidcVerifier } from "./oidc.js";
import type { Principal } from "./principal.js";
import type { SessionTokens } from "./session-tokens.js";

/** What the authenticator reads of a request. */
export interface AuthRequest {
  headers: { authorization?: string | undefined };
  query: unknown;
}

/**
 * The one authenticator of the client API. The credential comes from
 * `Authorization: Bearer` (or `?token=` where the route allows it) and is told
 * apart by shape: a configured API key first (whatever it looks like), then a
 * session token (`tst_…`), then a JWT (three base64url parts) when OIDC is on.
 */
export class Authenticator {
  constructor(
    private readonly apiKeys: ApiKeys,
    private readonly sessionTokens: SessionTokens,
    private readonly oidc: OidcVerifier | undefined,
  ) {}

  /** The request's principal, or a 401 (or 403 / 503 for OIDC) TetherError. */
  async authenticate(request: AuthRequest, allowQueryToken: boolean): Promise<Principal> {
    const credential = readCredential(request.headers.authorization, request.query, allowQueryToken);
    if (!credential) {
      throw tetherError(ErrorCodes.AUTH_MISSING, "This route needs a credential.", {
        hint: allowQueryToken
          ? "Send 'Authorization: Bearer <token>', or '?token=<token>' (browsers cannot set headers on a websocket)."
          : "Send 'Authorization: Bearer <token>' with an API key, a session token or an OIDC access token.",
      });
    }
    const tenant = this.apiKeys.tenantOf(credential.value);
    if (tenant !== undefined) return { kind: "api-key", tenant };
    const shape = shapeOf(credential.value);
    switch (shape) {
      case "session-token":
        return this.sessionTokens.verify(credential.value);
      case "jwt":
        if (this.oidc) return this.oidc.verify(credential.value);
        throw tetherError(ErrorCodes.AUTH_INVALID, "The credential looks like a JWT, but this orchestrator accepts no OIDC tokens.", {
          hint: "Set TETHER_OIDC_ISSUER and TETHER_OIDC_AUDIENCE on the orchestrator, or use an API key.",
        });
      case "api-key":
        throw tetherError(ErrorCodes.AUTH_INVALID, "The API key is not valid.", { hint: "Check TETHER_API_KEYS or <dataDir>/api-key on the orchestrator." });
      default: {
        const unreachable: never = shape;
        return unreachable;
      }
    }
  }
}
