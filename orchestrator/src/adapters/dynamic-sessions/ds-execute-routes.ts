import type { ExecuteResponse } from "@tether/shared";
import { ErrorResponse } from "@tether/shared";
import { ErrorCodes, TetherError, errorMessage, tetherError } from "../../errors.js";
import type { RouteScope } from "../../routes/route-context.js";
import { DS_PATH, decodeCode, requestOrigin, sameEnum, withTrailingSlash, type DsContext } from "./ds-context.js";
import { executionResource, type ExecutionRecord } from "./ds-executions.js";
import { legacyProperties } from "./ds-results.js";
import { runInSession } from "./ds-run.js";
import { DsQuery, ExecutionBody, ExecutionIdParams, ExecutionResource, LegacyExecuteBody, LegacyExecuteResponse } from "./ds-schemas.js";
import { shellCommandCode } from "./ds-shell.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };
const tags = ["dynamic-sessions"];

/** Code execution: `code/execute` and `python/execute` (2024-02-02-preview) and `executions` (2024-10-02-preview and later). */
export function registerDsExecuteRoutes(scope: RouteScope, ds: DsContext): void {
  const config = ds.app.config;

  for (const [path, topLevel] of [
    ["code/execute", false],
    ["python/execute", true],
  ] as const) {
    for (const url of withTrailingSlash(`${DS_PATH}/${path}`)) {
      scope.post(
        url,
        {
          schema: {
            tags,
            summary: `Run Python code (2024-02-02-preview ${path})`,
            description:
              "A Python exception is HTTP 200 with properties.status 'Failure' and the traceback in stderr." +
              (topLevel ? " python/execute also repeats status, stdout, stderr and result at the top level." : ""),
            querystring: DsQuery,
            body: LegacyExecuteBody,
            response: { 200: LegacyExecuteResponse, ...errors },
          },
        },
        async (request) => {
          const { properties } = request.body;
          if (properties.executionType !== undefined && !sameEnum(properties.executionType, "synchronous")) {
            throw tetherError(ErrorCodes.REQUEST_INVALID, `executionType '${properties.executionType}' is not supported by ${path}.`, {
              hint: "Use synchronous here, or POST executions (api-version 2024-10-02-preview or later) for Asynchronous.",
            });
          }
          const entry = await ds.sessions.resolve(request.tenant, request.query.identifier);
          const { response, note } = await runInSession(entry, config, decodeCode(properties.codeInputType, properties.code), properties.timeoutInSeconds);
          const legacy = legacyProperties(response, note);
          return {
            $id: "1",
            properties: legacy,
            ...(topLevel ? { status: legacy.status, stdout: legacy.stdout, stderr: legacy.stderr, result: legacy.result } : {}),
          };
        },
      );
    }
  }

  scope.post(
    `${DS_PATH}/executions`,
    {
      schema: {
        tags,
        summary: "Run code or a shell command (2024-10-02-preview and later)",
        description:
          "Synchronous answers 200 with the outcome; Asynchronous answers 202 at once (status Running) with operation-id and Operation-Location headers: " +
          "poll GET executions/{id}. shellCommand runs with /bin/sh in the workspace; its status is the exit code.",
        querystring: DsQuery,
        body: ExecutionBody,
        response: { 200: ExecutionResource, 202: ExecutionResource, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const { identifier } = request.query;
      if (body.execCommandAndArgs !== undefined) {
        throw tetherError(ErrorCodes.REQUEST_INVALID, "execCommandAndArgs is not supported.", { hint: "Send the command as shellCommand (run with /bin/sh -c)." });
      }
      const shell = body.shellCommand !== undefined;
      if (!shell && body.code === undefined) {
        throw tetherError(ErrorCodes.REQUEST_INVALID, "The body has neither code nor shellCommand.", { hint: "Send code (Python) or shellCommand (a /bin/sh command line)." });
      }
      const asynchronous = body.executionType !== undefined && sameEnum(body.executionType, "asynchronous");
      if (body.executionType !== undefined && !asynchronous && !sameEnum(body.executionType, "synchronous")) {
        throw tetherError(ErrorCodes.REQUEST_INVALID, `executionType '${body.executionType}' is not one of Synchronous, Asynchronous.`, { hint: "Use Synchronous or Asynchronous (any case)." });
      }
      const code = shell ? shellCommandCode(body.shellCommand ?? "", body.stdin) : decodeCode(body.codeInputType, body.code ?? "");
      const operationId = request.headers["operation-id"];
      const record = ds.executions.add(
        {
          tenant: request.tenant,
          identifier,
          executionType: asynchronous ? "Asynchronous" : "Synchronous",
          shell,
          outputStreamsMaxLength: body.outputStreamsMaxLength,
        },
        typeof operationId === "string" && operationId !== "" ? operationId : undefined,
      );
      const entry = await ds.sessions.resolve(request.tenant, identifier);
      const run = runInSession(entry, config, code, body.timeoutInSeconds).then(({ response, note }) => ds.executions.finish(record, response, note));
      const apiVersion = request.query["api-version"] ?? "2025-10-02-preview";
      void reply.header("operation-id", record.id);
      void reply.header(
        "operation-location",
        `${requestOrigin(request)}${DS_PATH}/executions/${encodeURIComponent(record.id)}?identifier=${encodeURIComponent(identifier)}&api-version=${encodeURIComponent(apiVersion)}`,
      );
      if (asynchronous) {
        run.catch((error: unknown) => ds.executions.finish(record, failedBeforeRunning(record, error), undefined));
        return reply.code(202).send(executionResource(record));
      }
      await run.catch((error: unknown) => {
        ds.executions.finish(record, failedBeforeRunning(record, error), undefined);
        throw error;
      });
      return reply.code(200).send(executionResource(record));
    },
  );

  scope.get(
    `${DS_PATH}/executions/:id`,
    {
      schema: {
        tags,
        summary: "An execution's status and result (running, or finished within TETHER_DYNAMIC_SESSIONS_RESULT_TTL_S)",
        querystring: DsQuery,
        params: ExecutionIdParams,
        response: { 200: ExecutionResource, ...errors },
      },
    },
    async (request) => executionResource(ds.executions.get(request.tenant, request.query.identifier, request.params.id)),
  );
}

/** An asynchronous execution whose session could not start (or refused it): it ends Failed with why. */
function failedBeforeRunning(record: ExecutionRecord, error: unknown): ExecuteResponse {
  const code = error instanceof TetherError ? error.code : ErrorCodes.INTERNAL;
  return {
    requestId: record.id,
    status: "worker_lost",
    executionCount: null,
    stdout: "",
    stderr: "",
    outputs: [],
    truncated: false,
    kernelRestarted: false,
    stateLost: false,
    failure: { code, message: errorMessage(error) },
    durationMs: 0,
    resumed: false,
  };
}
