import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, ElicitRequestSchema, type CallToolResult, type ElicitRequest, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";

export interface McpConnection {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Calls a tool and returns its result, validated (a long default timeout: code may run a while). */
  call(name: string, args: Record<string, unknown>, options?: { onprogress?: (progress: { progress: number; message?: string }) => void; signal?: AbortSignal }): Promise<CallToolResult>;
  close(): Promise<void>;
}

/**
 * An MCP client (the SDK's own) connected over Streamable HTTP to a Tether
 * orchestrator's /mcp with an API key; `elicit` answers elicitation requests
 * (and declares the capability), without it the client has none.
 */
export async function connectMcp(baseUrl: string, key: string, options: { elicit?: (request: ElicitRequest) => Promise<ElicitResult> } = {}): Promise<McpConnection> {
  const client = new Client({ name: "tether-test", version: "1.0.0" }, { capabilities: options.elicit ? { elicitation: {} } : {} });
  const elicit = options.elicit;
  if (elicit) client.setRequestHandler(ElicitRequestSchema, (request) => elicit(request));
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
  await client.connect(transport);
  return {
    client,
    transport,
    call: async (name, args, callOptions = {}) =>
      CallToolResultSchema.parse(
        await client.callTool({ name, arguments: args }, CallToolResultSchema, {
          timeout: 120_000,
          ...(callOptions.onprogress ? { onprogress: callOptions.onprogress } : {}),
          ...(callOptions.signal ? { signal: callOptions.signal } : {}),
        }),
      ),
    close: async () => {
      await client.close();
    },
  };
}

/** The text blocks of a tool result, joined. */
export function textOf(result: CallToolResult): string {
  return result.content.flatMap((block) => (block.type === "text" ? [block.text] : [])).join("\n");
}

/**
 * A raw HTTP request to /mcp (POST by default) as a browser or a bare client
 * would send it: `key` undefined sends no Authorization, `sessionId` the
 * Mcp-Session-Id header, `origin` an Origin header.
 */
export function rawMcpPost(
  baseUrl: string,
  key: string | undefined,
  body: unknown,
  options: { sessionId?: string; origin?: string; method?: string; signal?: AbortSignal } = {},
): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json, text/event-stream", "content-type": "application/json" };
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  if (options.sessionId !== undefined) headers["mcp-session-id"] = options.sessionId;
  if (options.origin !== undefined) headers.origin = options.origin;
  return fetch(`${baseUrl}/mcp`, {
    method: options.method ?? "POST",
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** `error.code` of a Tether error body. */
export async function errorCodeOf(response: Response): Promise<string | undefined> {
  const body: unknown = await response.json();
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error: unknown = body.error;
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined;
}
