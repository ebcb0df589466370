import { isRecord } from "@tether/shared";
import { ErrorCodes, tetherError, type TetherError } from "../errors.js";

/** What an Azure SDK failure looks like: a RestError (HTTP) or a credential error (no token). */

/** Where the failed call was aimed: named in messages so the fix is obvious. */
export interface AzureTarget {
  subscriptionId: string;
  resourceGroup: string;
  jobName: string;
}

/** Codes and messages ARM and Container Apps use for exhausted quotas (cores, executions, environments). */
const QUOTA_PATTERN = /quota|limitexceeded|limit exceeded|exceeds the limit|maxnumberof/i;

/** Credential errors @azure/identity raises before any request is sent. */
const CREDENTIAL_ERROR_NAMES = new Set(["CredentialUnavailableError", "AuthenticationError", "AggregateAuthenticationError", "AuthenticationRequiredError"]);

/** The HTTP status of an Azure SDK error, if it has one. */
export function azureStatusOf(error: unknown): number | undefined {
  const status = isRecord(error) ? error.statusCode : undefined;
  return typeof status === "number" ? status : undefined;
}

/**
 * Maps an Azure SDK error to a TetherError with a stable code and a hint:
 * 401/credential → LAUNCH_UNAUTHENTICATED, 403 → LAUNCH_FORBIDDEN, 404 →
 * LAUNCH_NOT_FOUND, 429 → LAUNCH_THROTTLED (with Retry-After), quota codes →
 * LAUNCH_QUOTA, anything else → LAUNCH_FAILED. `action` reads "start an execution of".
 */
export function launchErrorFromAzure(error: unknown, action: string, target: AzureTarget): TetherError {
  const failure = isRecord(error) ? error : {};
  const status = azureStatusOf(error);
  const azureCode = typeof failure.code === "string" ? failure.code : undefined;
  const azureMessage = typeof failure.message === "string" ? failure.message : String(error);
  const job = `job '${target.jobName}' in resource group '${target.resourceGroup}'`;
  const detail = `${azureMessage}${status !== undefined || azureCode ? ` (${[status, azureCode].filter((part) => part !== undefined).join(" ")})` : ""}`;
  const options = { cause: error };

  if (typeof failure.name === "string" && CREDENTIAL_ERROR_NAMES.has(failure.name)) {
    return tetherError(ErrorCodes.LAUNCH_UNAUTHENTICATED, `No Azure credential to ${action} ${job}: ${azureMessage}`, {
      ...options,
      hint: "In Azure, assign the orchestrator a managed identity; locally, sign in with `az login` (DefaultAzureCredential).",
    });
  }
  if (QUOTA_PATTERN.test(azureCode ?? "") || (status !== 429 && /quota/i.test(azureMessage))) {
    return tetherError(ErrorCodes.LAUNCH_QUOTA, `An Azure quota stops Tether from being able to ${action} ${job}: ${detail}`, {
      ...options,
      hint: "Stop idle sessions, lower the warm pool, or request a quota increase for the Container Apps environment.",
    });
  }
  switch (status) {
    case 401:
      return tetherError(ErrorCodes.LAUNCH_UNAUTHENTICATED, `Azure refused the orchestrator's token trying to ${action} ${job}: ${detail}`, {
        ...options,
        hint: "Check that the identity belongs to the subscription's tenant (AZURE_TENANT_ID) and can get tokens for Azure Resource Manager.",
      });
    case 403:
      return tetherError(ErrorCodes.LAUNCH_FORBIDDEN, `The orchestrator's Azure identity may not ${action} ${job}: ${detail}`, {
        ...options,
        hint: "Grant the orchestrator's identity the Container Apps Jobs Operator role on the job (jobs/start/action, jobs/read, jobs/execution/read, jobs/stop/execution/action).",
      });
    case 404:
      return tetherError(ErrorCodes.LAUNCH_NOT_FOUND, `Azure found no ${job} in subscription '${target.subscriptionId}' trying to ${action} it: ${detail}`, {
        ...options,
        hint: "Check TETHER_AZURE_SUBSCRIPTION_ID, TETHER_AZURE_RESOURCE_GROUP and TETHER_AZURE_JOB_NAME; the job must exist with a manual trigger.",
      });
    case 429: {
      const retryAfterS = retryAfterSeconds(responseHeader(failure, "retry-after"));
      return tetherError(ErrorCodes.LAUNCH_THROTTLED, `Azure Resource Manager is throttling requests to ${action} ${job}: ${detail}`, {
        ...options,
        hint: retryAfterS === undefined ? "Retry later." : `Retry in ${retryAfterS} s.`,
        ...(retryAfterS === undefined ? {} : { retryAfterS }),
      });
    }
    default:
      return tetherError(ErrorCodes.LAUNCH_FAILED, `Azure could not ${action} ${job}: ${detail}`, {
        ...options,
        hint: status === undefined ? "Check TETHER_AZURE_ARM_ENDPOINT and the orchestrator's network access to it." : "See the Azure message; retrying may help.",
      });
  }
}

/** Retry-After is seconds or an HTTP date; either way whole seconds from now, at least 1. */
export function retryAfterSeconds(raw: string | undefined): number | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Math.max(1, Number(value));
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - Date.now()) / 1000));
}

/** A response header of an Azure SDK RestError (`error.response.headers.get(name)`), if there is one. */
function responseHeader(failure: Record<string, unknown>, name: string): string | undefined {
  const response = failure.response;
  const headers = isRecord(response) ? response.headers : undefined;
  if (!isRecord(headers) || typeof headers.get !== "function") return undefined;
  const value: unknown = headers.get(name);
  return typeof value === "string" ? value : undefined;
}
