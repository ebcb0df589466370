import { errors, jwtVerify, type JWTPayload } from "jose";
import type { OidcConfig } from "../config-auth.js";
import { ErrorCodes, tetherError, type TetherError } from "../errors.js";
import { OidcSigningKeys, SigningKeysUnavailable } from "./oidc-keys.js";
import type { Principal } from "./principal.js";

/** Same rule as TETHER_API_KEYS tenants: tenants show up in logs and ids. */
const TENANT_VALUE = /^[A-Za-z0-9_.@-]{1,64}$/;
/** A client told the keys are unreachable may retry this much later. */
const UNAVAILABLE_RETRY_AFTER_S = 5;

/**
 * Verifies bearer JWTs of an OpenID Connect provider (Microsoft Entra ID or
 * any other): signature by a key of the provider's JWKS with an allowed
 * asymmetric algorithm, `iss`, `aud`, `exp` (required) and `nbf` with the
 * configured clock skew; then the tenant claim and the required role / scope.
 */
export class OidcVerifier {
  private readonly keys: OidcSigningKeys;

  constructor(private readonly config: OidcConfig) {
    this.keys = new OidcSigningKeys(config);
  }

  async verify(token: string): Promise<Extract<Principal, { kind: "oidc" }>> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.getKey, {
        issuer: this.config.issuer,
        audience: [...this.config.audiences],
        algorithms: [...this.config.algorithms],
        clockTolerance: this.config.clockSkewS,
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      throw this.refusal(error);
    }
    const tenant = payload[this.config.tenantClaim];
    if (typeof tenant !== "string" || !TENANT_VALUE.test(tenant)) {
      throw tetherError(ErrorCodes.AUTH_FORBIDDEN, `The token has no usable '${this.config.tenantClaim}' claim to take the tenant from.`, {
        hint: "TETHER_OIDC_TENANT_CLAIM names the claim (default 'tid', Entra ID's tenant id); its value must be 1-64 letters, digits, '_', '.', '@' or '-'.",
      });
    }
    this.checkPermissions(payload);
    return { kind: "oidc", tenant, subject: typeof payload.sub === "string" ? payload.sub : undefined };
  }

  private checkPermissions(payload: JWTPayload): void {
    const { requiredRole, requiredScope } = this.config;
    if (requiredRole !== undefined) {
      const roles = payload.roles;
      if (!Array.isArray(roles) || !roles.includes(requiredRole)) {
        throw tetherError(ErrorCodes.AUTH_FORBIDDEN, `The token does not carry the role '${requiredRole}'.`, {
          hint: "Assign the app role to the user or client (Entra ID: Enterprise applications → Users and groups, or API permissions → Application permissions).",
        });
      }
    }
    if (requiredScope !== undefined) {
      const granted = typeof payload.scp === "string" ? payload.scp : typeof payload.scope === "string" ? payload.scope : "";
      if (!granted.split(" ").includes(requiredScope)) {
        throw tetherError(ErrorCodes.AUTH_FORBIDDEN, `The token does not carry the scope '${requiredScope}'.`, {
          hint: "Request an access token for that scope (Entra ID: api://<app id>/<scope>).",
        });
      }
    }
  }

  /** jose's verdict as a TetherError; anything else (a bug) goes on as it is. */
  private refusal(error: unknown): unknown {
    if (error instanceof SigningKeysUnavailable) {
      return tetherError(ErrorCodes.AUTH_UNAVAILABLE, `The identity provider's signing keys are unavailable. ${error.message}`, {
        cause: error,
        retryAfterS: UNAVAILABLE_RETRY_AFTER_S,
        hint: "Retry later; if it persists, check TETHER_OIDC_ISSUER / TETHER_OIDC_JWKS_URL and that the orchestrator can reach them.",
      });
    }
    if (error instanceof errors.JWTExpired) {
      return tetherError(ErrorCodes.AUTH_EXPIRED, "The token has expired.", { hint: "Get a new access token from the identity provider." });
    }
    if (error instanceof errors.JWTClaimValidationFailed) return claimRefusal(error.claim, error.reason, this.config);
    if (error instanceof errors.JOSEAlgNotAllowed) {
      return invalid("The token's signing algorithm is not accepted.", `Accepted: ${this.config.algorithms.join(", ")} (TETHER_OIDC_ALGORITHMS); 'none' and HS* never are.`);
    }
    if (error instanceof errors.JWKSNoMatchingKey) {
      return invalid("No signing key of the identity provider matches the token (kid and algorithm).", "The token was not signed by TETHER_OIDC_ISSUER's keys.");
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) return invalid("The token's signature does not verify.");
    if (error instanceof errors.JOSEError) return invalid(`The token is not a valid JWT (${error.code}).`);
    return error;
  }
}

function claimRefusal(claim: string, reason: string, config: OidcConfig): TetherError {
  switch (claim) {
    case "iss":
      return invalid("The token was issued by another issuer.", `Only tokens whose 'iss' is exactly '${config.issuer}' (TETHER_OIDC_ISSUER) are accepted.`);
    case "aud":
      return invalid("The token is for another audience.", `Request the token for ${config.audiences.map((a) => `'${a}'`).join(" or ")} (TETHER_OIDC_AUDIENCE).`);
    case "nbf":
      return invalid("The token is not valid yet (nbf).", `Check the clocks; TETHER_OIDC_CLOCK_SKEW_S allows ${config.clockSkewS} s.`);
    case "exp":
      return invalid("The token has no expiry (exp).", "Tokens without 'exp' are never accepted.");
    default:
      return invalid(`The token's '${claim}' claim is not accepted (${reason}).`);
  }
}

function invalid(message: string, hint?: string): TetherError {
  return tetherError(ErrorCodes.AUTH_INVALID, message, hint ? { hint } : {});
}
