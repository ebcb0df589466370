import type { ApiKeyEntry } from "../config.js";
import { secretDigest } from "./digest.js";

/** The tenant of each API key, held only as sha256 digests of the keys. */
export class ApiKeys {
  private readonly tenantByDigest = new Map<string, string>();

  constructor(keys: readonly ApiKeyEntry[]) {
    for (const { tenant, key } of keys) this.tenantByDigest.set(secretDigest(key), tenant);
  }

  /** The key's tenant, or undefined for a key that is not one of ours. */
  tenantOf(key: string): string | undefined {
    return this.tenantByDigest.get(secretDigest(key));
  }
}
