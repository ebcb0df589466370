import type { FastifyError, FastifyRequest } from "fastify";
import type { TetherApp } from "./tether-app.js";
import { redactUrl } from "../auth/redact.js";
import type { OrchestratorConfig } from "../config.js";
import { errorBody } from "../error-hints.js";
import { ErrorCodes, TetherError, tetherError } from "../errors.js";
import { describeValidation } from "./validation-hints.js";

/** Every error leaves as `{error: {code, message, hint}}` with the code's status (and Retry-After when it has one). */
export function installErrorHandling(app: TetherApp): void {
  app.setErrorHandler((error: FastifyError | TetherError, request, reply) => {
    const tether = error instanceof TetherError ? error : fromFastifyError(error, request);
    if (tether.statusCode >= 500) request.log.error({ err: error }, "request failed");
    else request.log.info({ code: tether.code }, "request refused");
    if (tether.retryAfterS !== undefined) void reply.header("retry-after", String(tether.retryAfterS));
    return reply.code(tether.statusCode).send(errorBody(tether));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody(tetherError(ErrorCodes.ROUTE_NOT_FOUND, `No route ${request.method} ${redactUrl(request.url, request.query)}.`))),
  );
}

/** Maps fastify's own errors (validation, parsing, limits) to stable codes. */
function fromFastifyError(error: FastifyError, request: FastifyRequest): TetherError {
  if (error.validation) {
    const context = error.validationContext ?? "body";
    const schema: unknown = request.routeOptions.schema?.[context];
    return describeValidation(error.validation, context, schema, error.message);
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return tetherError(ErrorCodes.REQUEST_TOO_LARGE, "The request body is too large.", { hint: "The limit is TETHER_MAX_REQUEST_BYTES." });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return tetherError(ErrorCodes.REQUEST_UNSUPPORTED_MEDIA_TYPE, "Send JSON bodies with 'Content-Type: application/json'.");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return tetherError(ErrorCodes.REQUEST_MALFORMED_JSON, error.message);
    default:
      break;
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new TetherError(ErrorCodes.REQUEST_INVALID, error.message, { statusCode: status });
  return new TetherError(ErrorCodes.INTERNAL, "Internal error.", { statusCode: 500, cause: error });
}

/**
 * Our own JSON parser: an empty body is "no body" (POST /v1/sessions takes an
 * optional one), and bad JSON gets its own code. JSON routes take JSON only:
 * other types are 415, not a string that fails the schema.
 */
export function installBodyParsing(app: TetherApp, config: OrchestratorConfig): void {
  app.removeContentTypeParser("application/json");
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("application/json", { parseAs: "string", bodyLimit: config.maxRequestBytes }, (_request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(tetherError(ErrorCodes.REQUEST_MALFORMED_JSON, `The request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`), undefined);
    }
  });
}
