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
    const body = request.body as CreateSessionBody | undefined;
    const session = context.registry.create(request.tenant, body?.metadata ?? {});
    request.log.info({ sessionId: session.id }, "creating session");
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
