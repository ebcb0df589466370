/**
 * Who a request acts for, as the routes see it. Every kind is bound to one
 * tenant; a session token also to one session.
 */
export type Principal =
  /** A key of TETHER_API_KEYS (or the generated one): the whole tenant. */
  | { kind: "api-key"; tenant: string }
  /** A bearer JWT from TETHER_OIDC_ISSUER: the whole tenant named by its tenant claim; `subject` is its `sub`. */
  | { kind: "oidc"; tenant: string; subject: string | undefined }
  /** A session token (`tst_…`): one session of the tenant that minted it, and only that session's routes. */
  | { kind: "session-token"; tenant: string; sessionId: string; tokenId: string };

export type PrincipalKind = Principal["kind"];

/** What a log line may say about a principal: never a secret. */
export function describePrincipal(principal: Principal): Record<string, string> {
  switch (principal.kind) {
    case "api-key":
      return { auth: principal.kind, tenant: principal.tenant };
    case "oidc":
      return { auth: principal.kind, tenant: principal.tenant, ...(principal.subject ? { subject: principal.subject } : {}) };
    case "session-token":
      return { auth: principal.kind, tenant: principal.tenant, tokenId: principal.tokenId };
    default: {
      const unreachable: never = principal;
      return unreachable;
    }
  }
}
