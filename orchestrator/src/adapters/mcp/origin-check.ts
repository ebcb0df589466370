import { ErrorCodes, tetherError } from "../../errors.js";

export interface OriginPolicyInput {
  /** TETHER_MCP_ALLOWED_ORIGINS, normalised origins. */
  allowed: readonly string[];
  /** TETHER_PUBLIC_URL (ws:// or wss://), when set: its host is the orchestrator's own public origin. */
  publicUrl: string | undefined;
}

/** Loopback names a local orchestrator is reached by. */
const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"] as const;

/**
 * DNS-rebinding protection for /mcp: a browser page may call it only from
 * the orchestrator's own origin (loopback on the port the request came in
 * on, or TETHER_PUBLIC_URL's host) or an origin in TETHER_MCP_ALLOWED_ORIGINS.
 * The Host header is not trusted for this: a rebinding page's Host is the
 * attacker's name. Requests without Origin (non-browser clients) pass; the
 * API key is what authenticates them.
 */
export function assertOriginAllowed(origin: string | undefined, localPort: number | undefined, policy: OriginPolicyInput): void {
  if (origin === undefined) return;
  if (ownOrigins(localPort, policy).has(normalise(origin) ?? "")) return;
  throw tetherError(ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED, `Origin '${origin}' may not call /mcp.`, {
    hint: "Browsers may call /mcp only from the orchestrator's own origin or one listed in TETHER_MCP_ALLOWED_ORIGINS (scheme://host[:port]).",
  });
}

function ownOrigins(localPort: number | undefined, policy: OriginPolicyInput): Set<string> {
  const origins = new Set(policy.allowed);
  if (localPort !== undefined) {
    for (const host of LOOPBACK_HOSTS) {
      origins.add(`http://${host}:${localPort}`);
      origins.add(`https://${host}:${localPort}`);
    }
  }
  if (policy.publicUrl) {
    const url = new URL(policy.publicUrl.replace(/^ws/, "http"));
    origins.add(url.origin);
  }
  return origins;
}

function normalise(origin: string): string | undefined {
  try {
    return new URL(origin).origin;
  } catch {
    return undefined;
  }
}
