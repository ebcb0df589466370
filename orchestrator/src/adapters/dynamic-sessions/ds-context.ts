import type { FastifyRequest } from "fastify";
import { ErrorCodes, tetherError } from "../../errors.js";
import type { AppContext } from "../../routes/route-context.js";
import type { ExecutionRecords } from "./ds-executions.js";
import type { IdentifiedSessions } from "./ds-sessions.js";

/** Where the compatible API is mounted: clients are given `<orchestrator URL>/dynamic-sessions` as their pool management endpoint. */
export const DS_PATH = "/dynamic-sessions";

/** What the dynamic-sessions routes share. */
export interface DsContext {
  app: AppContext;
  sessions: IdentifiedSessions;
  executions: ExecutionRecords;
}

/** Both spellings clients use: Semantic Kernel Python asks for `code/execute/`. */
export function withTrailingSlash(path: string): string[] {
  return [path, `${path}/`];
}

/** The first api-version with the `executions`/`files` resource shapes. */
const FIRST_RESOURCE_API = "2024-10-02";

/**
 * Whether a request wants the 2024-02-02-preview shapes. Paths decide where
 * they differ; `GET files` exists in both, so there the api-version does:
 * absent or older than 2024-10-02 is the old shape. Any value is accepted.
 */
export function wantsLegacyShape(apiVersion: string | undefined): boolean {
  if (apiVersion === undefined) return true;
  const date = /^\d{4}-\d{2}-\d{2}/.exec(apiVersion.trim())?.[0];
  return date === undefined ? false : date < FIRST_RESOURCE_API;
}

/** Enum values compared the way the service's clients need: `inline`, `Inline`, `INLINE` are one value. */
export function sameEnum(value: string | undefined, expected: string): boolean {
  return value !== undefined && value.toLowerCase() === expected.toLowerCase();
}

/** The code to run from codeInputType: inline text as is, InlineBase64 decoded; anything else is refused. */
export function decodeCode(codeInputType: string | undefined, code: string): string {
  if (codeInputType === undefined || sameEnum(codeInputType, "inline") || sameEnum(codeInputType, "inlinetext")) return code;
  if (sameEnum(codeInputType, "inlinebase64")) return Buffer.from(code, "base64").toString("utf8");
  throw tetherError(ErrorCodes.REQUEST_INVALID, `codeInputType '${codeInputType}' is not supported.`, { hint: "Use Inline, InlineText or InlineBase64 (any case)." });
}

/** Absolute URL of this orchestrator as the client reached it (for Operation-Location). */
export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
