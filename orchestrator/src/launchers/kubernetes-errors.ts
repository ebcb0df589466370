import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { isRecord } from "@tether/shared";
import { ErrorCodes, tetherError, type TetherError } from "../errors.js";
import { retryAfterSeconds } from "./azure-errors.js";

/**
 * What a failed @kubernetes/client-node 1.x call throws: an ApiException with
 * the HTTP `code`, the raw response `body` (a JSON Status, as text) and the
 * response headers; or a node-fetch FetchError/AbortError (no answer at all).
 */
const KubernetesStatusSchema = Type.Object({
  message: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  code: Type.Optional(Type.Number()),
  details: Type.Optional(
    Type.Object({
      retryAfterSeconds: Type.Optional(Type.Number()),
      causes: Type.Optional(Type.Array(Type.Object({ message: Type.Optional(Type.String()), field: Type.Optional(Type.String()), reason: Type.Optional(Type.String()) }))),
    }),
  ),
});
/** The Status object the API server answers errors with (`{kind: "Status", status: "Failure", ...}`). */
export type KubernetesStatus = Static<typeof KubernetesStatusSchema>;
const statusCheck = TypeCompiler.Compile(KubernetesStatusSchema);

/** Where the failed call was aimed: named in messages so the fix is obvious. */
export interface KubernetesTarget {
  namespace: string;
}

/** Role rules the orchestrator needs, for hints (infra/kubernetes/rbac.yaml). */
const RBAC_HINT =
  "Bind the orchestrator's service account to a Role in the namespace allowing jobs (batch): create, get, list, delete; pods: get, list; pods/log: get; " +
  "secrets: create, delete; events: list (infra/kubernetes/rbac.yaml).";

/** The HTTP status of a client-node error, if the API server answered. */
export function kubernetesStatusOf(error: unknown): number | undefined {
  // ApiException carries a numeric code; FetchError's `code` is a string (ECONNREFUSED).
  const code = isRecord(error) ? error.code : undefined;
  return typeof code === "number" ? code : undefined;
}

/** The Status body of an ApiException, parsed; undefined when there is none (401s carry none). */
export function kubernetesStatusBody(error: unknown): KubernetesStatus | undefined {
  const body = isRecord(error) ? error.body : undefined;
  let parsed: unknown = body;
  if (typeof body === "string") {
    if (!body.trim().startsWith("{")) return undefined;
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  return statusCheck.Check(parsed) ? parsed : undefined;
}

/**
 * Maps a client-node error to a TetherError with a stable code and a hint:
 * 401 → LAUNCH_UNAUTHENTICATED, 403 "exceeded quota" → LAUNCH_QUOTA, other
 * 403 → LAUNCH_FORBIDDEN, 404 → LAUNCH_NOT_FOUND, 429 → LAUNCH_THROTTLED
 * (with Retry-After), 409/422/5xx/no answer → LAUNCH_FAILED. `action` reads
 * "create the worker Job".
 */
export function launchErrorFromKubernetes(error: unknown, action: string, target: KubernetesTarget): TetherError {
  const failure = isRecord(error) ? error : {};
  const status = kubernetesStatusOf(error);
  const body = kubernetesStatusBody(error);
  // ApiException's own message is "HTTP-Code: ...\nBody: ...\nHeaders: ...": the Status message says it better.
  const apiMessage = body?.message ?? (status === undefined && typeof failure.message === "string" ? failure.message : undefined) ?? "no details";
  const detail = `${apiMessage}${status !== undefined ? ` (${[status, body?.reason].filter(Boolean).join(" ")})` : ""}`;
  const where = `in namespace '${target.namespace}'`;
  const options = { cause: error };

  switch (status) {
    case 401:
      return tetherError(ErrorCodes.LAUNCH_UNAUTHENTICATED, `The Kubernetes API server refused the orchestrator's credentials trying to ${action} ${where}: ${detail}`, {
        ...options,
        hint: "In the cluster, check the orchestrator's service account token is mounted; outside, check the user in TETHER_K8S_KUBECONFIG (or KUBECONFIG) and that its token has not expired.",
      });
    case 403:
      if (/exceeded quota/i.test(apiMessage)) {
        return tetherError(ErrorCodes.LAUNCH_QUOTA, `A ResourceQuota ${where} stops Tether from being able to ${action}: ${detail}`, {
          ...options,
          hint: "Stop idle sessions, lower TETHER_POOL_SIZE or the worker's requests (TETHER_K8S_*_REQUEST), or raise the namespace's ResourceQuota.",
        });
      }
      return tetherError(ErrorCodes.LAUNCH_FORBIDDEN, `The orchestrator may not ${action} ${where}: ${detail}`, {
        ...options,
        // RBAC says "cannot <verb> resource"; anything else forbidden is an admission policy (LimitRange, a policy engine).
        hint: /cannot \w+ resource/i.test(apiMessage) ? RBAC_HINT : "An admission policy refused the request: see its message (LimitRange, Pod Security, a policy engine).",
      });
    case 404:
      return tetherError(ErrorCodes.LAUNCH_NOT_FOUND, `The Kubernetes API server found nothing to ${action} ${where}: ${detail}`, {
        ...options,
        hint: "Check TETHER_K8S_NAMESPACE (the namespace must exist) and that the cluster serves batch/v1 Jobs.",
      });
    case 429: {
      const retryAfterS = retryAfterSeconds(headerOf(failure.headers, "retry-after")) ?? positive(body?.details?.retryAfterSeconds);
      return tetherError(ErrorCodes.LAUNCH_THROTTLED, `The Kubernetes API server is throttling requests to ${action} ${where}: ${detail}`, {
        ...options,
        hint: retryAfterS === undefined ? "Retry later." : `Retry in ${retryAfterS} s.`,
        ...(retryAfterS === undefined ? {} : { retryAfterS }),
      });
    }
    case 409:
      return tetherError(ErrorCodes.LAUNCH_FAILED, `Kubernetes refused to ${action} ${where}: it already exists: ${detail}`, {
        ...options,
        hint: "Names come from unique launch ids: another orchestrator with the same TETHER_K8S_ORCHESTRATOR_ID may share the namespace.",
      });
    case 400:
    case 422: {
      const causes = (body?.details?.causes ?? []).map((cause) => [cause.field, cause.message].filter(Boolean).join(": ")).filter(Boolean);
      return tetherError(ErrorCodes.LAUNCH_FAILED, `Kubernetes refused the request to ${action} ${where} as invalid: ${detail}${causes.length > 0 ? `; ${causes.join("; ")}` : ""}`, {
        ...options,
        hint: "Check the TETHER_K8S_* values the Job is built from (image, CPU and memory quantities, node selector, names).",
      });
    }
    default:
      return tetherError(ErrorCodes.LAUNCH_FAILED, `Kubernetes could not ${action} ${where}: ${detail}`, {
        ...options,
        hint:
          status === undefined
            ? "No answer from the API server: check the server address in the kubeconfig (TETHER_K8S_KUBECONFIG) and the orchestrator's network access to it."
            : "See the API server's message; retrying may help.",
      });
  }
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (!isRecord(headers)) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && typeof value === "string") return value;
  }
  return undefined;
}

function positive(value: number | undefined): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.ceil(value) : undefined;
}
