import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The credential a resumable worker reconnects with: random, bound to one
 * worker, kept only as its sha256, compared in constant time, and replaced
 * on every issue (the previous one stops working).
 */
export class ResumeCredential {
  private digest: Buffer | undefined;

  /** A fresh token for welcome or resumed. */
  issue(): string {
    const token = randomBytes(32).toString("base64url");
    this.digest = digestOf(token);
    return token;
  }

  /** The digest (base64), for a shared store: another replica may have to check this worker's resume. */
  get digest64(): string | undefined {
    return this.digest?.toString("base64");
  }

  /** Checks against a digest another replica issued (a takeover). */
  adoptDigest(digest64: string): void {
    this.digest = Buffer.from(digest64, "base64");
  }

  matches(token: string): boolean {
    const wanted = this.digest;
    if (wanted?.length !== 32) return false;
    return timingSafeEqual(digestOf(token), wanted);
  }
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
