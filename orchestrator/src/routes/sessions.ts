import type { FastifyInstance } from "fastify";
import { CreateSessionBody, type SessionList } from "@tether/shared";
import { sessionOf, type AppContext } from "../app-context.js";

/** Create, inspect, list and delete sessions. */
export function registerSessionRoutes(scope: FastifyInstance, context: AppContext): void {
  const createOptions = {
    schema: { body: CreateSessionBody },
    // The body is optional: no body means no metadata.
    preValidation: async (request: { body: unknown }) => {
      request.body ??= {};
    },
  };

  scope.post("/v1/sessions", createOptions, async (request, reply) => {
    const body = (request.body ?? {}) as CreateSessionBody;
    // Quota and start limit are checked here, synchronously: over either, 429 with Retry-After.
    const session = context.registry.create(request.tenant, body.metadata ?? {}, body.idleTimeoutS !== undefined ? { idleTimeoutS: body.idleTimeoutS } : {});
    request.log.info({ sessionId: session.id, wait: body.wait !== false }, "creating session");
    if (body.wait === false) {
      // The client follows the phases on the websocket or GET; a failed start stays visible as `failed`.
      session.start({ keepOnFailure: true }).catch(() => undefined);
      return reply.code(202).send(session.info());
    }
    // Answers once the kernel is ready: the caller can execute right away.
    await session.start();
    return reply.code(201).send(session.info());
  });

  scope.get("/v1/sessions", async (request): Promise<SessionList> => ({
    sessions: context.registry.list(request.tenant).map((session) => session.info()),
  }));

  scope.get("/v1/sessions/:id", async (request) => sessionOf(context, request).info());

  scope.delete("/v1/sessions/:id", async (request, reply) => {
    const session = sessionOf(context, request);
    await session.stop("deleted by the client");
    return reply.code(204).send();
  });
}
