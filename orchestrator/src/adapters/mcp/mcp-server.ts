import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { errorMessage } from "../../errors.js";
import { hintFor } from "../../error-hints.js";
import { TetherError } from "../../errors.js";
import { listFiles, listFilesInput, readFile, readFileInput, restartKernel, writeFile, writeFileInput } from "./file-tools.js";
import { runCode, runCodeInput } from "./run-code-tool.js";
import { MAX_READ_BYTES, type ToolContext } from "./tool-context.js";
import { toolTexts } from "./tool-descriptions.js";
import { toolError } from "./tool-result.js";
import { MCP_SERVER_VERSION } from "./version.js";


/**
 * One MCP server for one MCP session (an McpServer connects to one transport
 * only): the tools, bound to that session's Tether session.
 */
export function createMcpServer(context: Omit<ToolContext, "server">): McpServer {
  const texts = toolTexts({
    defaultTimeoutMs: Math.min(context.config.defaultExecTimeoutMs, context.config.maxExecTimeoutMs),
    maxTimeoutMs: context.config.maxExecTimeoutMs,
    maxOutputBytes: context.config.maxOutputBytes,
    maxReadBytes: MAX_READ_BYTES,
  });
  const server = new McpServer({ name: "tether", version: MCP_SERVER_VERSION }, { capabilities: { tools: {} }, instructions: texts.instructions });
  const tools: ToolContext = { ...context, server };
  server.registerTool(
    "run_code",
    { title: "Run Python code", description: texts.runCode, inputSchema: runCodeInput, annotations: { openWorldHint: true } },
    (args, extra) => reported(() => runCode(tools, args, extra)),
  );
  server.registerTool(
    "list_files",
    { title: "List workspace files", description: texts.listFiles, inputSchema: listFilesInput, annotations: { readOnlyHint: true } },
    (args) => reported(() => listFiles(tools, args)),
  );
  server.registerTool(
    "read_file",
    { title: "Read a workspace file", description: texts.readFile, inputSchema: readFileInput, annotations: { readOnlyHint: true } },
    (args) => reported(() => readFile(tools, args)),
  );
  server.registerTool(
    "write_file",
    { title: "Write a workspace file", description: texts.writeFile, inputSchema: writeFileInput, annotations: { destructiveHint: true, idempotentHint: true } },
    (args) => reported(() => writeFile(tools, args)),
  );
  server.registerTool(
    "restart_kernel",
    { title: "Restart the Python kernel", description: texts.restartKernel, annotations: { destructiveHint: true } },
    () => reported(() => restartKernel(tools)),
  );
  return server;
}

/** A failed tool call as a result the model reads: the message, the stable code and what to do. */
async function reported(call: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof TetherError) return toolError(`${error.message} [${error.code}] ${hintFor(error.code, error.hint)}`);
    return toolError(`The tool failed: ${errorMessage(error)}`);
  }
}
