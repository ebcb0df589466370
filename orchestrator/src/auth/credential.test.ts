import { describe, expect, it } from "vitest";
import { ErrorCodes, TetherError } from "../errors.js";
import { readCredential, shapeOf } from "./credential.js";
import { redactUrl, serializeRequest } from "./redact.js";

function refusal(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof TetherError) return error.code;
    throw error;
  }
  return undefined;
}

describe("reading the credential", () => {
  it("takes 'Bearer <token>' in any case, with any spacing", () => {
    for (const header of ["Bearer abc", "bearer abc", "BEARER  abc ", "Bearer\tabc"]) expect(readCredential(header, {}, false)).toEqual({ value: "abc", source: "header" });
  });

  it("refuses a header without the Bearer scheme instead of reading it as a key", () => {
    for (const header of ["abc", "Basic abc", "Bearer", "Bearer a b", "Token abc"]) expect({ header, code: refusal(() => readCredential(header, {}, true)) }).toEqual({ header, code: ErrorCodes.AUTH_INVALID });
  });

  it("reads ?token= only where allowed, once, and not when a header is present", () => {
    expect(readCredential(undefined, { token: "q" }, false)).toBeUndefined();
    expect(readCredential(undefined, { token: "q" }, true)).toEqual({ value: "q", source: "query" });
    expect(readCredential("Bearer h", { token: "q" }, true)).toEqual({ value: "h", source: "header" });
    expect(refusal(() => readCredential(undefined, { token: ["a", "b"] }, true))).toBe(ErrorCodes.AUTH_INVALID);
    expect(refusal(() => readCredential(undefined, { token: "" }, true))).toBe(ErrorCodes.AUTH_INVALID);
    expect(readCredential(undefined, {}, true)).toBeUndefined();
  });

  it("tells session tokens, JWTs and API keys apart by shape", () => {
    expect(shapeOf("tst_abc")).toBe("session-token");
    expect(shapeOf("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")).toBe("jwt");
    expect(shapeOf("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")).toBe("jwt");
    expect(shapeOf("tk_abcdef")).toBe("api-key");
    expect(shapeOf("a.b")).toBe("api-key");
  });
});

describe("URL redaction for logs", () => {
  it("masks every parameter whose decoded name says token, however it is encoded", () => {
    expect(redactUrl("/v1/x?token=s3cret&after=4")).toBe("/v1/x?token=[REDACTED]&after=4");
    expect(redactUrl("/v1/x?%74oken=s3cret")).toBe("/v1/x?%74oken=[REDACTED]");
    expect(redactUrl("/v1/x?%74%6F%6B%65%6E=s3cret")).toBe("/v1/x?%74%6F%6B%65%6E=[REDACTED]");
    expect(redactUrl("/v1/x?TOKEN=s3cret&access_token=t2")).toBe("/v1/x?TOKEN=[REDACTED]&access_token=[REDACTED]");
    expect(redactUrl("/v1/x?a=1&token=one&token=two")).toBe("/v1/x?a=1&token=[REDACTED]&token=[REDACTED]");
    expect(redactUrl("/v1/x?%zz%74oken=s3cret")).toBe("/v1/x?%zz%74oken=[REDACTED]");
    expect(redactUrl("/v1/x")).toBe("/v1/x");
  });

  it("masks any value the parsed query read as token, even if a parser decodes a name differently", () => {
    expect(redactUrl("/v1/x?weird=s%33cret", { token: "s3cret" })).toBe("/v1/x?weird=[REDACTED]");
  });

  it("serializes requests without headers", () => {
    const serialized = serializeRequest({ method: "GET", url: "/v1/x?%74oken=s3cret", ip: "127.0.0.1", query: { token: "s3cret" }, headers: { authorization: "Bearer s3cret" } });
    expect(serialized).toEqual({ method: "GET", url: "/v1/x?%74oken=[REDACTED]", remoteAddress: "127.0.0.1" });
    expect(serializeRequest(null)).toEqual({});
  });
});
