import type { AppContext, RouteScope } from "../routes/route-context.js";
import { registerMcpRoutes } from "./mcp/mcp-routes.js";

/**
 * The surfaces LLM agents plug into without glue, over the session core:
 * MCP (Streamable HTTP at /mcp). Register in the authenticated scope: every
 * route takes the tenant's API key like /v1 does.
 */
export async function registerAgentAdapters(scope: RouteScope, context: AppContext): Promise<void> {
  registerMcpRoutes(scope, context);
}
