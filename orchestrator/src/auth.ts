import { stringField } from "@tether/shared";
import { createHash } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { ApiKeyEntry } from "./config.js";
import { ErrorCodes, tetherError } from "./errors.js";

/**
 * Maps API keys to tenants. Keys are held only as sha256 digests and looked
 * up by digest, so the comparison time says nothing about the key.
 */
export class ApiKeyAuthenticator {
  private readonly tenantByDigest = new Map<string, string>();

  constructor(keys: readonly ApiKeyEntry[]) {
    for (const { tenant, key } of keys) this.tenantByDigest.set(digest(key), tenant);
  }

  /** Returns the tenant of the request's key or throws 401 (missing / invalid). */
  authenticate(request: FastifyRequest, allowQueryToken: boolean): string {
    const key = readBearer(request.headers.authorization) ?? (allowQueryToken ? readQueryToken(request.query) : undefined);
    if (key === undefined) {
      throw tetherError(ErrorCodes.AUTH_MISSING, "This route needs an API key.", {
        hint: "Send 'Authorization: Bearer <key>'; browsers opening the websocket may use '?token=<key>'.",
      });
    }
    const tenant = this.tenantByDigest.get(digest(key));
    if (tenant === undefined) {
      throw tetherError(ErrorCodes.AUTH_INVALID, "The API key is not valid.", { hint: "Check TETHER_API_KEYS or <dataDir>/api-key on the orchestrator." });
    }
    return tenant;
  }
}

function digest(key: string): string {
  return createHash("sha256").update(key).digest("base64");
}

function readBearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // A malformed Authorization header is an invalid key, not a missing one.
  return match ? match[1] : header;
}

function readQueryToken(query: unknown): string | undefined {
  const token = stringField(query, "token");
  return token === "" ? undefined : token;
}

/** A URL with any `token=` query value replaced, for logs. */
export function redactUrl(url: string): string {
  return url.includes("token=") ? url.replace(/([?&]token=)[^&#]*/gi, "$1[REDACTED]") : url;
}
