import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors.js";
import { kubernetesStatusBody, launchErrorFromKubernetes } from "./kubernetes-errors.js";

const target = { namespace: "tether" };
const ACTION = "create the worker Job";

/** The shape of client-node 1.x's ApiException: numeric code, the raw Status JSON as text, lower-case headers. */
function apiException(code: number, status: Record<string, unknown> | undefined, headers: Record<string, string> = {}): Error {
  const body = status === undefined ? undefined : JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", code, ...status });
  return Object.assign(new Error(`HTTP-Code: ${code}\nMessage: Unknown API Status Code!\nBody: ${JSON.stringify(body)}\nHeaders: {}`), { code, body, headers });
}

describe("launchErrorFromKubernetes", () => {
  it("maps an RBAC 403 to LAUNCH_FORBIDDEN with the Role to grant", () => {
    const error = launchErrorFromKubernetes(
      apiException(403, {
        reason: "Forbidden",
        message: 'jobs.batch is forbidden: User "system:serviceaccount:tether:tether" cannot create resource "jobs" in API group "batch" in the namespace "tether"',
      }),
      ACTION,
      target,
    );
    expect(error.code).toBe(ErrorCodes.LAUNCH_FORBIDDEN);
    expect(error.statusCode).toBe(502);
    expect(error.message).toContain('cannot create resource "jobs"');
    expect(error.message).not.toContain("HTTP-Code");
    expect(error.hint).toContain("infra/kubernetes/rbac.yaml");
  });

  it("maps a 403 from an admission policy to LAUNCH_FORBIDDEN without the RBAC hint", () => {
    const error = launchErrorFromKubernetes(apiException(403, { reason: "Forbidden", message: 'jobs.batch "x" is forbidden: maximum cpu usage per Container is 2, but limit is 4' }), ACTION, target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_FORBIDDEN);
    expect(error.hint).toContain("admission");
  });

  it("maps a 403 'exceeded quota' to LAUNCH_QUOTA", () => {
    const error = launchErrorFromKubernetes(
      apiException(403, { reason: "Forbidden", message: 'secrets "tether-lch-1-join" is forbidden: exceeded quota: tether-quota, requested: count/secrets=1, used: count/secrets=50, limited: count/secrets=50' }),
      "create the join token Secret",
      target,
    );
    expect(error.code).toBe(ErrorCodes.LAUNCH_QUOTA);
    expect(error.statusCode).toBe(503);
    expect(error.hint).toContain("ResourceQuota");
  });

  it("maps 401 (which client-node reports without a body) to LAUNCH_UNAUTHENTICATED", () => {
    const error = launchErrorFromKubernetes(apiException(401, undefined), ACTION, target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_UNAUTHENTICATED);
    expect(error.hint).toContain("TETHER_K8S_KUBECONFIG");
  });

  it("maps 404 (no such namespace) to LAUNCH_NOT_FOUND naming TETHER_K8S_NAMESPACE", () => {
    const error = launchErrorFromKubernetes(apiException(404, { reason: "NotFound", message: 'namespaces "nope" not found' }), ACTION, target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_NOT_FOUND);
    expect(error.message).toContain('namespaces "nope" not found (404 NotFound)');
    expect(error.hint).toContain("TETHER_K8S_NAMESPACE");
  });

  it("maps 429 to LAUNCH_THROTTLED with Retry-After from the header, else from the Status details", () => {
    const fromHeader = launchErrorFromKubernetes(apiException(429, { reason: "TooManyRequests", message: "too many requests" }, { "retry-after": "7" }), ACTION, target);
    expect(fromHeader.code).toBe(ErrorCodes.LAUNCH_THROTTLED);
    expect(fromHeader.statusCode).toBe(429);
    expect(fromHeader.retryAfterS).toBe(7);
    const fromDetails = launchErrorFromKubernetes(apiException(429, { reason: "TooManyRequests", message: "slow down", details: { retryAfterSeconds: 3 } }), ACTION, target);
    expect(fromDetails.retryAfterS).toBe(3);
    expect(launchErrorFromKubernetes(apiException(429, { message: "slow down" }), ACTION, target).retryAfterS).toBeUndefined();
  });

  it("maps 409 and 422 to LAUNCH_FAILED, listing the invalid fields", () => {
    const conflict = launchErrorFromKubernetes(apiException(409, { reason: "AlreadyExists", message: 'jobs.batch "tether-lch-1" already exists' }), ACTION, target);
    expect(conflict.code).toBe(ErrorCodes.LAUNCH_FAILED);
    expect(conflict.hint).toContain("TETHER_K8S_ORCHESTRATOR_ID");
    const invalid = launchErrorFromKubernetes(
      apiException(422, {
        reason: "Invalid",
        message: 'Job.batch "tether-lch-1" is invalid',
        details: { causes: [{ field: "spec.template.spec.containers[0].resources.requests", message: "Invalid value: \"2\": must be less than or equal to cpu limit of 1" }] },
      }),
      ACTION,
      target,
    );
    expect(invalid.code).toBe(ErrorCodes.LAUNCH_FAILED);
    expect(invalid.message).toContain("spec.template.spec.containers[0].resources.requests: Invalid value");
    expect(invalid.hint).toContain("TETHER_K8S_");
  });

  it("maps no answer at all (connection refused, timeout) to LAUNCH_FAILED pointing at the API server address", () => {
    const refused = Object.assign(new Error("request to https://127.0.0.1:1/apis/batch/v1/namespaces/tether/jobs failed, reason: connect ECONNREFUSED 127.0.0.1:1"), {
      name: "FetchError",
      code: "ECONNREFUSED",
      type: "system",
    });
    const error = launchErrorFromKubernetes(refused, ACTION, target);
    expect(error.code).toBe(ErrorCodes.LAUNCH_FAILED);
    expect(error.message).toContain("ECONNREFUSED");
    expect(error.hint).toContain("server address");
    expect(launchErrorFromKubernetes(apiException(500, { reason: "InternalError", message: "etcd timeout" }), ACTION, target).hint).toContain("retrying");
  });
});

describe("kubernetesStatusBody", () => {
  it("parses the Status text client-node keeps, and ignores what is not JSON", () => {
    expect(kubernetesStatusBody(apiException(404, { reason: "NotFound", message: "gone" }))?.reason).toBe("NotFound");
    expect(kubernetesStatusBody({ code: 502, body: "<html>bad gateway</html>" })).toBeUndefined();
    expect(kubernetesStatusBody(new Error("x"))).toBeUndefined();
  });
});
