import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from "jose";
import type { OidcConfig } from "../config-auth.js";
import { errorMessage } from "../errors.js";

/** The provider's keys could not be had (network, timeout, not 200, bad JSON): not the token's fault. */
export class SigningKeysUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SigningKeysUnavailable";
  }
}

/** The part of an OpenID Provider's discovery document we read. */
const DiscoveryDocument = Type.Object({ issuer: Type.String(), jwks_uri: Type.String() });

/**
 * The provider's signing keys: the JWKS at TETHER_OIDC_JWKS_URL, or at the
 * `jwks_uri` of `<issuer>/.well-known/openid-configuration` (fetched once, on
 * first use; a failed discovery is retried by the next token). jose caches the
 * keys (10 min) and refetches when a token names an unknown `kid`, at most
 * once per TETHER_OIDC_JWKS_COOLDOWN_MS: that is how key rotation is picked up.
 */
export class OidcSigningKeys {
  private jwks: JWTVerifyGetKey | undefined;
  private discovery: Promise<JWTVerifyGetKey> | undefined;

  constructor(private readonly config: OidcConfig) {
    if (config.jwksUrl) this.jwks = this.remoteSet(config.jwksUrl);
  }

  /** For jwtVerify. Throws jose's own errors for a token no key matches; SigningKeysUnavailable when the keys cannot be fetched. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const jwks = this.jwks ?? (await this.discover());
    try {
      return await jwks(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys || error instanceof errors.JOSENotSupported) throw error;
      throw new SigningKeysUnavailable(`The signing keys could not be fetched: ${reasonOf(error)}.`, { cause: error });
    }
  };

  private discover(): Promise<JWTVerifyGetKey> {
    this.discovery ??= this.fetchDiscovery().then(
      (jwks) => (this.jwks = jwks),
      (error: unknown) => {
        this.discovery = undefined;
        throw error;
      },
    );
    return this.discovery;
  }

  private async fetchDiscovery(): Promise<JWTVerifyGetKey> {
    const url = `${this.config.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    let body: unknown;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.config.fetchTimeoutMs), redirect: "error", headers: { accept: "application/json" } });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      body = await response.json();
    } catch (error) {
      throw new SigningKeysUnavailable(`The OpenID discovery document ${url} could not be fetched: ${reasonOf(error)}.`, { cause: error });
    }
    if (!Value.Check(DiscoveryDocument, body)) throw new SigningKeysUnavailable(`The OpenID discovery document ${url} has no jwks_uri.`);
    // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
    if (body.issuer !== this.config.issuer) {
      throw new SigningKeysUnavailable(`The discovery document names issuer '${body.issuer}', not TETHER_OIDC_ISSUER '${this.config.issuer}'.`);
    }
    const jwksUrl = parseHttpUrl(body.jwks_uri, new URL(url).protocol);
    if (!jwksUrl) throw new SigningKeysUnavailable(`The discovery document's jwks_uri '${body.jwks_uri}' is not a usable URL.`);
    return this.remoteSet(jwksUrl);
  }

  private remoteSet(url: string): JWTVerifyGetKey {
    return createRemoteJWKSet(new URL(url), { timeoutDuration: this.config.fetchTimeoutMs, cooldownDuration: this.config.jwksCooldownMs });
  }
}

/** The jwks_uri when it is http(s) and no weaker than the discovery URL's scheme (https discovery never leads to plain http keys). */
function parseHttpUrl(raw: string, discoveryProtocol: string): string | undefined {
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" || (url.protocol === "http:" && discoveryProtocol === "http:")) return url.href;
  } catch {
    // not a URL
  }
  return undefined;
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWKSTimeout || (error instanceof Error && error.name === "TimeoutError")) return "timed out";
  // fetch hides the network error (ECONNREFUSED, ENOTFOUND) in its cause.
  if (error instanceof Error && error.cause instanceof Error) return `${error.message} (${error.cause.message})`;
  return errorMessage(error);
}
