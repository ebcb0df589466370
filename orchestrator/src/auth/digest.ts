import { createHash } from "node:crypto";

/**
 * The SHA-256 of a secret, as stored and looked up. Secrets are found by
 * digest in a map, never compared: the time a lookup takes says nothing about the secret.
 */
export function secretDigest(secret: string): string {
  return createHash("sha256").update(secret).digest("base64url");
}
