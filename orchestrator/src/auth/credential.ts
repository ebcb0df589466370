import { SESSION_TOKEN_PREFIX, isRecord } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";

/** A secret presented by a request, and where it came from. */
export interface Credential {
  value: string;
  source: "header" | "query";
}

/** How a credential is told apart: a session token by its prefix, a JWT by its three base64url parts, anything else is an API key. */
export type CredentialShape = "session-token" | "jwt" | "api-key";

/** header.payload.signature; the signature may be empty (an unsecured `alg: none` token, refused later with its own message). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i;

export function shapeOf(value: string): CredentialShape {
  if (value.startsWith(SESSION_TOKEN_PREFIX)) return "session-token";
  return JWT_SHAPE.test(value) ? "jwt" : "api-key";
}

/**
 * The request's credential: `Authorization: Bearer <secret>` (scheme required,
 * any case), else `?token=` where the route allows it. Undefined: none given.
 * A header without the Bearer scheme is refused, never read as a bare key.
 */
export function readCredential(authorization: string | undefined, query: unknown, allowQueryToken: boolean): Credential | undefined {
  if (authorization !== undefined && authorization.trim() !== "") {
    const match = BEARER.exec(authorization.trim());
    if (match?.[1]) return { value: match[1], source: "header" };
    // Never echo the header: it holds the secret.
    const bare = /^\S+$/.test(authorization.trim());
    throw tetherError(ErrorCodes.AUTH_INVALID, bare ? "The Authorization header has no scheme." : "The Authorization header does not use the Bearer scheme.", {
      hint: "Send 'Authorization: Bearer <token>' (an API key, a session token or an OIDC access token).",
    });
  }
  if (!allowQueryToken) return undefined;
  const token = isRecord(query) ? query.token : undefined;
  if (token === undefined) return undefined;
  if (typeof token !== "string" || token === "") {
    throw tetherError(ErrorCodes.AUTH_INVALID, "The 'token' query parameter must appear once, with a value.", { hint: "Use '?token=<token>' once." });
  }
  return { value: token, source: "query" };
}
