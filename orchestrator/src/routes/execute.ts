import { randomUUID } from "node:crypto";
import { CallAck, ErrorResponse, ExecuteBody, ExecuteResponse } from "@tether/shared";
import { SessionParams, sessionOf, type AppContext, type RouteScope } from "./route-context.js";
import { effectiveExecTimeoutMs } from "../config.js";
import { explainExecution } from "../sessions/execution-hints.js";
import { ExecutionResultFold } from "../sessions/execution-result.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };

/** REST execution (folded into one response), interrupt and restart. */
export function registerExecuteRoutes(scope: RouteScope, context: AppContext): void {
  scope.post(
    "/v1/sessions/:id/execute",
    { schema: { params: SessionParams, body: ExecuteBody, response: { 200: ExecuteResponse, ...errors } } },
    async (request) => {
      const session = sessionOf(context, request);
      const body = request.body;
      const requestId = `req_${randomUUID().replaceAll("-", "")}`;
      const fold = new ExecutionResultFold(requestId, context.config.maxOutputBytes);
      await new Promise<void>((resolve) => {
        session.execute(
          {
            requestId,
            code: body.code,
            timeoutMs: effectiveExecTimeoutMs(context.config, body.timeoutMs),
            // REST cannot answer prompts mid-flight: either the lines given up front, or input() fails at once.
            stdin: body.stdin ? { mode: "lines", lines: body.stdin } : { mode: "none" },
          },
          {
            deliver(event) {
              fold.apply(event);
              if (event.type === "done") resolve();
            },
            resumed() {
              fold.markResumed();
            },
          },
        );
      });
      return explainExecution(fold.toResponse(), {
        requestedTimeoutMs: body.timeoutMs,
        defaultTimeoutMs: context.config.defaultExecTimeoutMs,
        maxTimeoutMs: context.config.maxExecTimeoutMs,
        stdinName: 'the `stdin` field: a list of lines, one per input() call (e.g. "stdin": ["42"])',
      });
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
