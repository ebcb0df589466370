import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ElicitRequestSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type ElicitResult,
} from "@modelcontextprotocol/sdk/types.js";
import { errorMessage } from "@tether/shared";
import { MCP_SERVER_VERSION } from "./version.js";

export interface StdioProxyOptions {
  /** The orchestrator's base URL, e.g. http://127.0.0.1:8080 (its /mcp is used). */
  url: string;
  key: string;
  /** Where diagnostics go (stdout belongs to the protocol). */
  log(line: string): void;
}

/** Longest a forwarded tool call may stay silent (progress resets it); the local client has its own timeout too. */
const UPSTREAM_CALL_TIMEOUT_MS = 60 * 60 * 1000;

/**
 * `tether-mcp`: an MCP server on stdio (for desktop clients that launch
 * servers as processes) that forwards to a running orchestrator's /mcp.
 * tools/list and tools/call go upstream; progress, cancellation and
 * elicitation are forwarded both ways. The upstream session is opened once
 * the local client has initialized, declaring elicitation only when the
 * local client did (so input() behaves as it would over HTTP). When stdin
 * ends, the upstream MCP session is ended (deleting its Tether session) and
 * the process exits.
 */
export async function runStdioProxy(options: StdioProxyOptions): Promise<void> {
  const local = new Server({ name: "tether", version: MCP_SERVER_VERSION }, { capabilities: { tools: {} } });
  let upstream: Promise<Client> | undefined;
  let current: Client | undefined;

  const connectUpstream = async (): Promise<Client> => {
    const elicitation = local.getClientCapabilities()?.elicitation !== undefined;
    const client = new Client({ name: "tether-mcp-stdio", version: MCP_SERVER_VERSION }, { capabilities: elicitation ? { elicitation: {} } : {} });
    if (elicitation) client.setRequestHandler(ElicitRequestSchema, async (request): Promise<ElicitResult> => local.elicitInput(request.params));
    const transport = new StreamableHTTPClientTransport(new URL(`${options.url.replace(/\/+$/, "")}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${options.key}` } },
    });
    await client.connect(transport);
    current = client;
    return client;
  };
  const getUpstream = (): Promise<Client> => {
    upstream ??= connectUpstream().catch((error: unknown) => {
      upstream = undefined;
      throw error;
    });
    return upstream;
  };
  /** Runs `call` upstream; a 404 (the orchestrator forgot the MCP session: idle, restart) reconnects once. */
  const withUpstream = async <T>(call: (client: Client) => Promise<T>): Promise<{ value: T; reconnected: boolean }> => {
    const client = await getUpstream();
    try {
      return { value: await call(client), reconnected: false };
    } catch (error) {
      if (!(error instanceof StreamableHTTPError) || error.code !== 404) throw error;
      options.log("tether-mcp: the orchestrator no longer knows this MCP session; opening a new one");
      if (upstream && current === client) upstream = undefined;
      return { value: await call(await getUpstream()), reconnected: true };
    }
  };

  local.oninitialized = () => {
    getUpstream().catch((error: unknown) => options.log(`tether-mcp: cannot reach ${options.url}/mcp: ${errorMessage(error)}`));
  };
  local.setRequestHandler(ListToolsRequestSchema, async (request) => (await withUpstream((client) => client.listTools(request.params))).value);
  local.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const token = extra._meta?.progressToken;
    const { value, reconnected } = await withUpstream((client) =>
      client.callTool(request.params, CallToolResultSchema, {
        signal: extra.signal,
        timeout: UPSTREAM_CALL_TIMEOUT_MS,
        resetTimeoutOnProgress: true,
        ...(token === undefined
          ? {}
          : { onprogress: (progress) => void extra.sendNotification({ method: "notifications/progress", params: { ...progress, progressToken: token } }) }),
      }),
    );
    // callTool's type also admits the pre-2024-11 `toolResult` shape; the schema check narrows it.
    const result = CallToolResultSchema.parse(value);
    if (!reconnected) return result;
    const note = { type: "text" as const, text: "Note: the connection to Tether was re-established with a new session: earlier variables and files are gone." };
    return { ...result, content: [...result.content, note] };
  });

  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      options.log(`tether-mcp: ${why}; ending the upstream session`);
      const client = current;
      if (client?.transport instanceof StreamableHTTPClientTransport) await client.transport.terminateSession().catch(() => undefined);
      await client?.close().catch(() => undefined);
      await local.close().catch(() => undefined);
    })();
    return stopping;
  };
  await local.connect(new StdioServerTransport());
  // The SDK's stdio transport never notices the end of stdin: a client that went away would leave this process behind.
  const exit = (why: string): void => {
    void stop(why).finally(() => process.exit(0));
  };
  process.stdin.once("end", () => exit("stdin ended"));
  process.stdin.once("close", () => exit("stdin closed"));
  process.once("SIGTERM", () => exit("SIGTERM"));
  process.once("SIGINT", () => exit("SIGINT"));
}

/** `--url`, `--key`, `--key-file` flags over TETHER_URL, TETHER_API_KEY, TETHER_API_KEY_FILE; throws a usage message. */
export function readProxyOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { url: string; key: string } {
  const flags = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? "";
    const match = /^--(url|key|key-file)(?:=(.*))?$/.exec(arg);
    if (!match?.[1]) throw new Error(`unknown argument '${arg}'. ${USAGE}`);
    const value = match[2] ?? argv[(index += 1)];
    if (value === undefined) throw new Error(`--${match[1]} needs a value. ${USAGE}`);
    flags.set(match[1], value);
  }
  const url = flags.get("url") ?? env.TETHER_URL ?? "http://127.0.0.1:8080";
  const keyFile = flags.get("key-file") ?? env.TETHER_API_KEY_FILE;
  const key = flags.get("key") ?? env.TETHER_API_KEY ?? (keyFile ? readFileSync(keyFile, "utf8").trim() : undefined);
  if (!key) throw new Error(`no API key. ${USAGE}`);
  try {
    new URL(url);
  } catch {
    throw new Error(`'${url}' is not a URL. ${USAGE}`);
  }
  return { url, key };
}

const USAGE = "Usage: tether-mcp [--url http://127.0.0.1:8080] [--key <key> | --key-file <path>] (or TETHER_URL, TETHER_API_KEY, TETHER_API_KEY_FILE).";
