import { readInteger, type Env } from "./config-readers.js";
import { configInvalid } from "./errors.js";

/** Settings of the agent-facing adapters (MCP at /mcp, dynamic sessions at /dynamic-sessions). */
export interface AgentAdaptersConfig {
  /** TETHER_MCP_IDLE_TIMEOUT_S, default 1800: an MCP session without requests this long is closed (and its Tether session deleted). */
  mcpIdleTimeoutS: number;
  /** TETHER_MCP_ALLOWED_ORIGINS: browser origins (`scheme://host[:port]`, comma-separated) allowed on /mcp besides the orchestrator's own. */
  mcpAllowedOrigins: readonly string[];
  /** TETHER_MCP_MAX_SESSIONS_PER_TENANT, default 100: open MCP sessions one tenant may hold. */
  mcpMaxSessionsPerTenant: number;
  /** TETHER_DYNAMIC_SESSIONS_RESULT_TTL_S, default 3600: how long a finished `executions` result stays readable by id. */
  dynamicSessionsResultTtlS: number;
}

export function readAgentAdaptersConfig(env: Env): AgentAdaptersConfig {
  return {
    mcpIdleTimeoutS: readInteger(env, "TETHER_MCP_IDLE_TIMEOUT_S", 1800, 1),
    mcpAllowedOrigins: readOrigins(env.TETHER_MCP_ALLOWED_ORIGINS),
    mcpMaxSessionsPerTenant: readInteger(env, "TETHER_MCP_MAX_SESSIONS_PER_TENANT", 100, 1),
    dynamicSessionsResultTtlS: readInteger(env, "TETHER_DYNAMIC_SESSIONS_RESULT_TTL_S", 3600, 1),
  };
}

/** `https://a.example,http://localhost:3000`: each an origin (no path), normalised by URL. */
function readOrigins(raw: string | undefined): string[] {
  if (!raw?.trim()) return [];
  return raw.split(",").map((item, index) => {
    const value = item.trim();
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw configInvalid(`TETHER_MCP_ALLOWED_ORIGINS entry ${index + 1} ('${value}') is not an origin.`, "Example: TETHER_MCP_ALLOWED_ORIGINS=https://chat.example.com,http://localhost:5173");
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || (url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
      throw configInvalid(`TETHER_MCP_ALLOWED_ORIGINS entry ${index + 1} ('${value}') must be scheme://host[:port] with http or https and nothing after.`);
    }
    return url.origin;
  });
}
