import { Type } from "@sinclair/typebox";
import { CreateSessionTokenBody, ErrorResponse, RevokedSessionTokens, SessionTokenInfo } from "@tether/shared";
import { SessionParams, sessionOf, type AppContext, type RouteScope } from "./route-context.js";

const errors = { "4xx": ErrorResponse, "5xx": ErrorResponse };
const TokenParams = Type.Object({ id: Type.String(), tokenId: Type.String() });

/**
 * Session tokens: a backend mints one for a browser, which may then use that
 * session and nothing else. Minting and revoking take the tenant's API key or
 * an OIDC token; a session token cannot mint or revoke (`denySessionTokens`).
 */
export function registerSessionTokenRoutes(scope: RouteScope, context: AppContext): void {
  scope.post(
    "/v1/sessions/:id/tokens",
    {
      config: { denySessionTokens: true },
      // The body is optional: no body means the default lifetime.
      schema: { params: SessionParams, body: Type.Optional(CreateSessionTokenBody), response: { 201: SessionTokenInfo, ...errors } },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const session = sessionOf(context, request);
      const info = await context.sessionTokens.mint(request.tenant, session.id, request.body?.ttlS);
      request.log.info({ sessionId: session.id, tokenId: info.tokenId, expiresAt: info.expiresAt }, "session token minted");
      // The body holds a secret: no cache may keep it.
      return reply.code(201).header("cache-control", "no-store").send(info);
    },
  );

  scope.delete(
    "/v1/sessions/:id/tokens/:tokenId",
    { config: { denySessionTokens: true }, schema: { params: TokenParams, response: { 204: Type.Null(), ...errors } } },
    async (request, reply) => {
      const session = sessionOf(context, request);
      await context.sessionTokens.revoke(session.id, request.params.tokenId);
      request.log.info({ sessionId: session.id, tokenId: request.params.tokenId }, "session token revoked");
      return reply.code(204).send(null);
    },
  );

  scope.delete(
    "/v1/sessions/:id/tokens",
    { config: { denySessionTokens: true }, schema: { params: SessionParams, response: { 200: RevokedSessionTokens, ...errors } } },
    async (request) => {
      const session = sessionOf(context, request);
      const revoked = await context.sessionTokens.revokeSession(session.id);
      request.log.info({ sessionId: session.id, revoked }, "session tokens revoked");
      return { revoked };
    },
  );
}
