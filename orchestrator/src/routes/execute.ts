import { randomUUID } from "node:crypto";
import { CallAck, ErrorResponse, ExecuteBody, ExecuteResponse, ExecutionAccepted, type ExecutionView } from "@tether/shared";
import { effectiveExecTimeoutMs } from "../config.js";
import { ErrorCodes, tetherError } from "../errors.js";
import type { ExecutionRecord } from "../sessions/execution-records.js";
import { SessionParams, sessionOf, startExecution, type AppContext, type RouteScope } from "./route-context.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };

/** REST execution (folded into one response, or accepted at once with `wait: false`), interrupt and restart. */
export function registerExecuteRoutes(scope: RouteScope, context: AppContext): void {
  scope.post(
    "/v1/sessions/:id/execute",
    { schema: { params: SessionParams, body: ExecuteBody, response: { 200: ExecuteResponse, 202: ExecutionAccepted, ...errors } } },
    async (request, reply) => {
      const session = sessionOf(context, request);
      const body = request.body;
      const requestId = body.requestId ?? `req_${randomUUID().replaceAll("-", "")}`;
      await startExecution(
        context,
        session,
        {
          requestId,
          code: body.code,
          timeoutMs: effectiveExecTimeoutMs(context.config, body.timeoutMs),
          // REST cannot answer prompts mid-flight: either the lines given up front, or input() fails at once.
          stdin: body.stdin ? { mode: "lines", lines: body.stdin } : { mode: "none" },
        },
        undefined,
      );
      const record = session.events.records.get(requestId);
      if (!record || record === "expired") throw tetherError(ErrorCodes.INTERNAL, `The record of execution '${requestId}' is missing.`);
      if (body.wait === false) return reply.code(202).send({ requestId, status: record.state });
      // A client whose request drops can still read the result: GET .../executions/:requestId.
      await record.waitDone(Number.POSITIVE_INFINITY);
      if (record.moved) throw sessionMoved(session.id, requestId);
      return finalView(record);
    },
  );

  scope.post("/v1/sessions/:id/interrupt", { schema: { params: SessionParams, response: { 200: CallAck, ...errors } } }, async (request) => {
    await sessionOf(context, request).interrupt();
    return { ok: true as const };
  });

  scope.post("/v1/sessions/:id/restart", { schema: { params: SessionParams, response: { 200: CallAck, ...errors } } }, async (request) => {
    await sessionOf(context, request).restart();
    return { ok: true as const };
  });
}

/** The session went to another replica (this one is shutting down, or lost it) while the caller waited. */
export function sessionMoved(sessionId: string, requestId: string) {
  return tetherError(ErrorCodes.SESSION_MOVED, `Session '${sessionId}' moved to another replica while execution '${requestId}' ran; it goes on there.`, {
    retryAfterS: 1,
    hint: `Read its result with GET /v1/sessions/${sessionId}/executions/${requestId}?waitMs=60000.`,
  });
}

/** The view of an execution that has ended (its status is a done status). */
function finalView(record: ExecutionRecord): Omit<ExecutionView, "status"> & { status: Exclude<ExecutionView["status"], "queued" | "running"> } {
  const view = record.view();
  const { status } = view;
  if (status === "queued" || status === "running") throw tetherError(ErrorCodes.INTERNAL, `Execution '${record.requestId}' has not ended.`);
  return { ...view, status };
}
