import { ErrorCodes, tetherError } from "../errors.js";

/**
 * The origins browsers may call from (TETHER_CORS_ORIGINS): the CORS plugin
 * answers them on REST routes, and websocket upgrades, which CORS does not
 * cover, are checked here. An empty list turns both off.
 */
export class OriginPolicy {
  private readonly origins: ReadonlySet<string>;
  private readonly any: boolean;

  constructor(origins: readonly string[]) {
    this.origins = new Set(origins);
    this.any = this.origins.has("*");
  }

  get enabled(): boolean {
    return this.origins.size > 0;
  }

  /** For the CORS plugin: the allowed origins, or true for any. */
  get corsOrigin(): true | string[] {
    return this.any ? true : [...this.origins];
  }

  /**
   * Refuses a websocket upgrade (403 TETHER_ERR_REQUEST_ORIGIN_NOT_ALLOWED)
   * whose Origin is neither listed nor the orchestrator's own host. Without an
   * Origin header (not a browser) it passes: the credential is what counts.
   */
  assertUpgradeAllowed(origin: string | undefined, host: string | undefined): void {
    if (!this.enabled || origin === undefined || this.any || this.origins.has(origin)) return;
    if (host !== undefined && hostOf(origin) === host.toLowerCase()) return;
    throw tetherError(ErrorCodes.REQUEST_ORIGIN_NOT_ALLOWED, "This page's origin may not open Tether websockets.", {
      hint: "Add the page's origin (scheme://host[:port]) to TETHER_CORS_ORIGINS on the orchestrator.",
    });
  }
}

/** host[:port] of an origin, lowercased; undefined for `null` and other non-URLs. */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return undefined;
  }
}
