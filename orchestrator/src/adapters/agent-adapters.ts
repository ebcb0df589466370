import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { AppContext, RouteScope } from "../routes/route-context.js";
import { registerDynamicSessionsRoutes } from "./dynamic-sessions/ds-routes.js";
import { registerMcpRoutes } from "./mcp/mcp-routes.js";

/**
 * The surfaces LLM agents plug into without glue, over the session core:
 * MCP (Streamable HTTP at /mcp) and an Azure Container Apps dynamic sessions
 * compatible API (/dynamic-sessions). Register in the authenticated scope:
 * every route takes the tenant's API key like /v1 does. Each gets its own
 * plugin (the dynamic-sessions routes install their own body parsers).
 */
export async function registerAgentAdapters(scope: RouteScope, context: AppContext): Promise<void> {
  await scope.register(async (mcp) => registerMcpRoutes(mcp.withTypeProvider<TypeBoxTypeProvider>(), context));
  await scope.register(async (ds) => registerDynamicSessionsRoutes(ds.withTypeProvider<TypeBoxTypeProvider>(), context));
}
