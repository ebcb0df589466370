import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { launchErrorFromAzure, retryAfterSeconds } from "./azure-errors.js";

const target = { subscriptionId: "00000000-0000-4000-8000-0000000000a1", resourceGroup: "rg", jobName: "job" };

/** The shape of the SDK's RestError: statusCode, code, and the response headers. */
function restError(statusCode: number, code: string, message: string, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), {
    name: "RestError",
    statusCode,
    code,
    response: { headers: { get: (name: string) => headers[name.toLowerCase()] } },
  });
}

describe("launchErrorFromAzure", () => {
  it("maps 403 to LAUNCH_FORBIDDEN with the role to grant", () => {
    const error = launchErrorFromAzure(restError(403, "AuthorizationFailed", "no"), "start an execution of", target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_FORBIDDEN);
    expect(error.statusCode).toBe(502);
    expect(error.hint).toContain("Container Apps Jobs Operator");
  });

  it("maps 404 to LAUNCH_NOT_FOUND naming the settings to check", () => {
    const error = launchErrorFromAzure(restError(404, "ResourceNotFound", "gone"), "start an execution of", target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_NOT_FOUND);
    expect(error.hint).toContain("TETHER_AZURE_RESOURCE_GROUP");
  });

  it("maps 429 to LAUNCH_THROTTLED with Retry-After in seconds", () => {
    const error = launchErrorFromAzure(restError(429, "TooManyRequests", "slow down", { "retry-after": "12" }), "start an execution of", target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_THROTTLED);
    expect(error.statusCode).toBe(429);
    expect(error.retryAfterS).toBe(12);
  });

  it("maps quota codes to LAUNCH_QUOTA whatever the status", () => {
    for (const [status, code] of [
      [409, "QuotaExceeded"],
      [400, "MaxNumberOfJobExecutionsExceeded"],
      [403, "SubscriptionQuotaLimitExceeded"],
    ] as const) {
      expect(launchErrorFromAzure(restError(status, code, "over"), "start an execution of", target).code).toBe(ErrorCodes.LAUNCH_QUOTA);
    }
  });

  it("maps 401 and credential errors to LAUNCH_UNAUTHENTICATED", () => {
    expect(launchErrorFromAzure(restError(401, "InvalidAuthenticationToken", "bad token"), "start an execution of", target).code).toBe(ErrorCodes.LAUNCH_UNAUTHENTICATED);
    const noLogin = Object.assign(new Error("Please run 'az login'"), { name: "CredentialUnavailableError" });
    const error = launchErrorFromAzure(noLogin, "start an execution of", target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_UNAUTHENTICATED);
    expect(error.hint).toContain("az login");
  });

  it("maps anything else, network failures included, to LAUNCH_FAILED with Azure's message", () => {
    const error = launchErrorFromAzure(restError(500, "InternalServerError", "boom"), "start an execution of", target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_FAILED);
    expect(error.message).toContain("boom (500 InternalServerError)");
    const network = launchErrorFromAzure(Object.assign(new Error("connect ECONNREFUSED"), { name: "RestError", code: "REQUEST_SEND_ERROR" }), "start an execution of", target);
    expect(network.code).toBe(ErrorCodes.LAUNCH_FAILED);
    expect(network.hint).toContain("TETHER_AZURE_ARM_ENDPOINT");
  });
});

describe("retryAfterSeconds", () => {
  it("reads seconds and HTTP dates, at least 1", () => {
    expect(retryAfterSeconds("30")).toBe(30);
    expect(retryAfterSeconds("0")).toBe(1);
    expect(retryAfterSeconds(new Date(Date.now() + 5500).toUTCString())).toBeGreaterThanOrEqual(5);
    expect(retryAfterSeconds("soon")).toBeUndefined();
    expect(retryAfterSeconds(undefined)).toBeUndefined();
  });
});
