import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { FastifyBaseLogger as Logger } from "fastify";
import type { OrchestratorConfig } from "../../config.js";
import type { SessionSlot } from "../common/session-slot.js";

/** What the tools of one MCP session share. */
export interface ToolContext {
  /** The MCP session's Tether session, started on first use. */
  slot: SessionSlot;
  config: OrchestratorConfig;
  /** The MCP session's server: client capabilities, elicitation. */
  server: McpServer;
  /** Marks a tool call in flight: an MCP session is not idled out under it. Call the returned function when it ends. */
  beginCall(): () => void;
  logger: Logger;
}

/** Largest file read_file returns whole. */
export const MAX_READ_BYTES = 1024 * 1024;

/** Runs a tool body with the call counted as in flight. */
export async function inFlight<T>(context: ToolContext, body: () => Promise<T>): Promise<T> {
  const end = context.beginCall();
  try {
    return await body();
  } finally {
    end();
  }
}

/** A note for the model when this call had to start a session (a fresh kernel, an empty workspace). */
export function sessionNotes(acquired: { started: boolean; replaced: boolean }): string[] {
  if (acquired.replaced) return ["The previous sandbox session had ended, so a new one was started: earlier variables and files are gone."];
  return [];
}
