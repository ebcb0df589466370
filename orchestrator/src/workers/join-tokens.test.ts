import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { JoinTokenStore } from "./join-tokens.js";

describe("JoinTokenStore", () => {
  it("accepts a fresh token once and binds it to its launch", () => {
    const store = new JoinTokenStore(1000);
    const token = store.mint("lch_1", "ses_1");
    const check = store.consume(token);
    expect(check).toMatchObject({ ok: true, binding: { launchId: "lch_1", sessionId: "ses_1" } });
  });

  it("refuses a token used a second time as reused", () => {
    const store = new JoinTokenStore(1000);
    const token = store.mint("lch_1", "ses_1");
    store.consume(token);
    expect(store.consume(token)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_REUSED });
  });

  it("refuses an expired token as expired", () => {
    let now = 0;
    const store = new JoinTokenStore(1000, () => now);
    const token = store.mint("lch_1", "ses_1");
    now = 1000;
    expect(store.consume(token)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_EXPIRED });
  });

  it("refuses an unknown token, and one that differs by a character, as invalid", () => {
    const store = new JoinTokenStore(1000);
    const token = store.mint("lch_1", "ses_1");
    expect(store.consume("nope")).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_INVALID });
    const altered = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
    expect(store.consume(altered)).toMatchObject({ ok: false, code: ErrorCodes.WORKER_TOKEN_INVALID });
    expect(store.consume(token).ok).toBe(true);
  });

  it("refuses the token of a launch that was revoked", () => {
    const store = new JoinTokenStore(1000);
    const token = store.mint("lch_1", "ses_1");
    store.revoke("lch_1");
    expect(store.consume(token).ok).toBe(false);
  });

  it("forgets spent tokens some time after they expire", () => {
    let now = 0;
    const store = new JoinTokenStore(1000, () => now);
    store.consume(store.mint("lch_1", "ses_1"));
    now = 5000;
    store.mint("lch_2", "ses_2");
    expect(store.size).toBe(1);
  });
});
