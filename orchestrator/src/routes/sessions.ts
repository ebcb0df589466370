import { Type } from "@sinclair/typebox";
import { CreateSessionBody, ErrorResponse, SessionInfo, SessionList } from "@tether/shared";
import { DEFAULT_PROFILE, profileNamed } from "../config-profiles.js";
import { SessionParams, sessionOf, type AppContext, type RouteScope } from "./route-context.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };

/** Create, inspect, list and delete sessions. */
export function registerSessionRoutes(scope: RouteScope, context: AppContext): void {
  scope.post(
    "/v1/sessions",
    {
      // The body is optional: no body means no metadata.
      schema: { body: Type.Optional(CreateSessionBody), response: { 201: SessionInfo, 202: SessionInfo, ...errors } },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const profile = profileNamed(context.config.profiles, body.profile);
      // In a cluster, quota and start limit count every replica's sessions first.
      await context.cluster?.admitCreate(request.tenant);
      // Another replica claimed one of our idle pool workers for this create (and forwarded it here).
      const pooledLaunchId = await context.cluster?.peerPool.redeem(request.headers);
      if (context.cluster && !pooledLaunchId && profile.name === DEFAULT_PROFILE) {
        // No idle pool worker here: the session is created where one idles (its answer is the create's).
        const answer = await context.cluster.peerPool.createElsewhere(request.headers, body);
        // The other replica's JSON as it serialized it (a SessionInfo, or an error in the API's shape): a string is sent unchanged.
        if (answer) return reply.code(answer.status).headers(answer.headers).send(answer.body as unknown as SessionInfo);
      }
      // Quota and start limit are checked here, synchronously: over either, 429 with Retry-After.
      const session = context.registry.create(request.tenant, body.metadata ?? {}, {
        ...(body.idleTimeoutS !== undefined ? { idleTimeoutS: body.idleTimeoutS } : {}),
        ...(pooledLaunchId ? { pooledLaunchId } : {}),
        profile,
      });
      if (context.cluster) {
        // Its record is in the store before anyone hears its id: every replica can route to it.
        await context.cluster.own(session).catch(async (error: unknown) => {
          await session.stop("its record could not be stored");
          throw error;
        });
      }
      request.log.info({ sessionId: session.id, wait: body.wait !== false, profile: profile.name }, "creating session");
      if (body.wait === false) {
        // The client follows the phases on the websocket or GET; a failed start stays visible as `failed`.
        session.start({ keepOnFailure: true }).catch(() => undefined);
        return reply.code(202).send(session.info());
      }
      // Answers once the kernel is ready: the caller can execute right away.
      await session.start();
      return reply.code(201).send(session.info());
    },
  );

  scope.get("/v1/sessions", { schema: { response: { 200: SessionList, ...errors } } }, async (request) => ({
    sessions: context.cluster ? await context.cluster.listSessions(request.tenant) : context.registry.list(request.tenant).map((session) => session.info()),
  }));

  scope.get("/v1/sessions/:id", { schema: { params: SessionParams, response: { 200: SessionInfo, ...errors } } }, async (request) => sessionOf(context, request).info());

  // Deleting is the backend's business: a browser holding a session token may use the session, not end it.
  const deleteOptions = { config: { denySessionTokens: true }, schema: { params: SessionParams, response: { 204: Type.Null(), ...errors } } };
  scope.delete("/v1/sessions/:id", deleteOptions, async (request, reply) => {
    await sessionOf(context, request).stop("deleted by the client");
    return reply.code(204).send(null);
  });
}
