import { Type } from "@sinclair/typebox";
import { ErrorResponse, ExecutionList, ExecutionView, RequestId } from "@tether/shared";
import { ErrorCodes, tetherError } from "../errors.js";
import { sessionOf, type AppContext, type RouteScope } from "./route-context.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };
/** Longest `waitMs` a GET may hold the request (long-poll). */
export const MAX_EXECUTION_WAIT_MS = 60_000;

const ExecutionParams = Type.Object({ id: Type.String(), requestId: RequestId });
const WaitQuery = Type.Object({
  /** Hold the request until the execution ends or this many ms pass (at most 60000). */
  waitMs: Type.Optional(Type.String({ pattern: "^[0-9]{1,9}$" })),
});
const ListQuery = Type.Object({ limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,4}$" })) });

/** Executions as resources: read one (long-poll with `waitMs`), list recent ones. */
export function registerExecutionRoutes(scope: RouteScope, context: AppContext): void {
  scope.get(
    "/v1/sessions/:id/executions/:requestId",
    { schema: { params: ExecutionParams, querystring: WaitQuery, response: { 200: ExecutionView, ...errors } } },
    async (request) => {
      const session = sessionOf(context, request);
      const { requestId } = request.params;
      const record = session.events.records.get(requestId);
      if (record === "expired") {
        throw tetherError(ErrorCodes.EXECUTION_EXPIRED, `Execution '${requestId}' ended long enough ago that its result is no longer kept.`, {
          hint: "Results are kept TETHER_EXECUTION_RETENTION_S after they end, within TETHER_EVENT_LOG_MAX_BYTES per session.",
        });
      }
      if (!record) {
        throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${requestId}' in this session.`, {
          hint: "Start one with POST /v1/sessions/:id/execute (give your own requestId to find it again); GET /v1/sessions/:id/executions lists recent ones.",
        });
      }
      const waitMs = Math.min(MAX_EXECUTION_WAIT_MS, Number(request.query.waitMs ?? 0));
      await record.waitDone(waitMs);
      return record.view();
    },
  );

  scope.get("/v1/sessions/:id/executions", { schema: { params: Type.Object({ id: Type.String() }), querystring: ListQuery, response: { 200: ExecutionList, ...errors } } }, async (request) => {
    const session = sessionOf(context, request);
    const limit = Math.min(500, Number(request.query.limit ?? 50));
    return { executions: session.events.records.list(limit).map((record) => record.summary()) };
  });
}
