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

  matches(token: string): boolean {
    return this.digest !== undefined && timingSafeEqual(digestOf(token), this.digest);
  }
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}
