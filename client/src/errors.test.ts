import { describe, expect, it } from "vitest";
import { backoffDelayMs } from "./backoff.js";
import { DEFAULT_RECONNECT, resolveConfig } from "./config.js";
import { AuthenticationError, ConnectionError, EventsExpiredError, NotFoundError, PermissionError, RateLimitError, ServerError, TetherError } from "./errors.js";
import { TRANSPORT_ERRORS, classifyStatus, errorFromResponse, isRetryable, transportError } from "./transport-errors.js";

describe("the transport error table", () => {
  it("maps each HTTP status to its SDK error, keeping the server's code and hint", () => {
    const cases: [number, new (...args: never[]) => TetherError][] = [
      [401, AuthenticationError],
      [403, PermissionError],
      [404, NotFoundError],
      [410, EventsExpiredError],
      [429, RateLimitError],
      [500, ServerError],
      [503, ServerError],
    ];
    for (const [status, ErrorClass] of cases) {
      const error = errorFromResponse(status, { error: { code: `SERVER_CODE_${status}`, message: "m", hint: "server hint" } }, null, "GET /x");
      expect({ status, isClass: error instanceof ErrorClass, code: error.code, hint: error.hint }).toEqual({ status, isClass: true, code: `SERVER_CODE_${status}`, hint: "server hint" });
    }
  });

  it("falls back to the table's code and hint when the answer is not Tether's (a proxy), and reads Retry-After", () => {
    const error = errorFromResponse(429, "<html>busy</html>", "7", "POST /v1/sessions");
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ code: TRANSPORT_ERRORS.rate_limited.code, hint: TRANSPORT_ERRORS.rate_limited.hint, retryAfterMs: 7000, status: 429 });
    const gateway = errorFromResponse(502, undefined, null, "GET /x");
    expect(gateway).toMatchObject({ code: "TETHER_ERR_CLIENT_HTTP", status: 502 });
    expect(isRetryable(gateway)).toBe(true);
    expect(isRetryable(errorFromResponse(401, undefined, null, "GET /x"))).toBe(false);
  });

  it("classifies network failures and timeouts as retryable connection errors with a hint", () => {
    for (const failure of ["network", "timeout"] as const) {
      const error = transportError(failure, "down");
      expect(error).toBeInstanceOf(ConnectionError);
      expect(isRetryable(error)).toBe(true);
      expect(error.hint).toBe(TRANSPORT_ERRORS[failure].hint);
    }
    expect(classifyStatus(413)).toBe("bad_request");
    expect(classifyStatus(409)).toBe("conflict");
  });
});

describe("configuration and backoff", () => {
  it("takes options over the environment over the defaults", () => {
    const env = { TETHER_BASE_URL: "http://env:1", TETHER_API_KEY: "env-key" };
    expect(resolveConfig({}, env)).toMatchObject({ baseUrl: "http://env:1", credential: "env-key", requestTimeoutMs: 60_000 });
    expect(resolveConfig({ baseUrl: "http://given:2/", token: "tst_x", requestTimeoutMs: 5 }, env)).toMatchObject({ baseUrl: "http://given:2", credential: "tst_x", requestTimeoutMs: 5 });
    expect(resolveConfig({}, {})).toMatchObject({ baseUrl: "http://127.0.0.1:8080", credential: undefined });
    expect(() => resolveConfig({ apiKey: "a", token: "b" }, {})).toThrow(expect.objectContaining({ code: "TETHER_ERR_CLIENT_CONFIG" }));
    expect(() => resolveConfig({ baseUrl: "ftp://x" }, {})).toThrow(expect.objectContaining({ code: "TETHER_ERR_CLIENT_CONFIG" }));
  });

  it("draws each delay with full jitter under a bound that doubles up to the cap", () => {
    expect(backoffDelayMs(0, DEFAULT_RECONNECT, () => 0.999)).toBe(99);
    expect(backoffDelayMs(3, DEFAULT_RECONNECT, () => 0.5)).toBe(400);
    expect(backoffDelayMs(40, DEFAULT_RECONNECT, () => 0.999)).toBe(4995);
    expect(backoffDelayMs(5, DEFAULT_RECONNECT, () => 0)).toBe(0);
  });
});
