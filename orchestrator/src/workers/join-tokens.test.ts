import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { MemoryClusterStore } from "../store/memory-store.js";
import { JoinTokens } from "./join-tokens.js";

function tokens(now: () => number = Date.now): { tokens: JoinTokens; store: MemoryClusterStore } {
  const store = new MemoryClusterStore(now);
  return { tokens: new JoinTokens(store, 1000, pino({ level: "silent" }), now), store };
}

describe("JoinTokens", () => {
  it("accepts a fresh token once and binds it to its launch", async () => {
    const { tokens: issuer } = tokens();
    const token = await issuer.mint("lch_1", "ses_1");
    expect(await issuer.consume(token)).toMatchObject({ ok: true, binding: { launchId: "lch_1", sessionId: "ses_1" } });
  });

  it("refuses a token used a second time as reused", async () => {
    const { tokens: issuer } = tokens();
    const token = await issuer.mint("lch_1", "ses_1");
    await issuer.consume(token);
    expect(await issuer.consume(token)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_REUSED });
  });

  it("refuses an expired token as expired", async () => {
    let now = 0;
    const { tokens: issuer } = tokens(() => now);
    const token = await issuer.mint("lch_1", "ses_1");
    now = 1000;
    expect(await issuer.consume(token)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_EXPIRED });
  });

  it("refuses an unknown token, and one that differs by a character, as invalid", async () => {
    const { tokens: issuer } = tokens();
    const token = await issuer.mint("lch_1", "ses_1");
    expect(await issuer.consume("nope")).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_INVALID });
    const altered = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
    expect(await issuer.consume(altered)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_INVALID });
    expect((await issuer.consume(token)).ok).toBe(true);
  });

  it("refuses the token of a launch that was revoked", async () => {
    const { tokens: issuer } = tokens();
    const token = await issuer.mint("lch_1", "ses_1");
    issuer.revoke("lch_1");
    await new Promise((resolve) => setImmediate(resolve));
    expect((await issuer.consume(token)).ok).toBe(false);
  });

  it("forgets spent tokens some time after they expire", async () => {
    let now = 0;
    const { tokens: issuer, store } = tokens(() => now);
    await issuer.consume(await issuer.mint("lch_1", "ses_1"));
    now = 70_000;
    await issuer.mint("lch_2", "ses_2");
    expect(store.joinTokenCount).toBe(1);
  });
});
