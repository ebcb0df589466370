import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { ExecuteBody, type ExecuteResponse } from "@tether/shared";
import { sessionOf, type AppContext } from "../app-context.js";
import { effectiveExecTimeoutMs } from "../config.js";
import { ExecutionResultFold } from "../sessions/execution-result.js";

/** REST execution (folded into one response), interrupt and restart. */
export function registerExecuteRoutes(scope: FastifyInstance, context: AppContext): void {
  scope.post("/v1/sessions/:id/execute", { schema: { body: ExecuteBody } }, async (request): Promise<ExecuteResponse> => {
    const session = sessionOf(context, request);
    const body = request.body as ExecuteBody;
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
    return fold.toResponse();
  });

  scope.post("/v1/sessions/:id/interrupt", async (request) => {
    await sessionOf(context, request).interrupt();
    return { ok: true as const };
  });

  scope.post("/v1/sessions/:id/restart", async (request) => {
    await sessionOf(context, request).restart();
    return { ok: true as const };
  });
}
