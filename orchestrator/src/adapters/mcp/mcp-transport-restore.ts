import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";

/** Nothing reaches this address: the replayed requests never leave the process. */
const REPLAY_URL = "http://replay.tether.invalid/mcp";
const REPLAY_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

/**
 * Puts a fresh transport, already connected to its McpServer, into the
 * state the client's initialize left the original in (on a replica that let
 * the session go, or died): the same initialize is replayed into it (the
 * session id generator must answer `sessionId`), its answer dropped, then
 * `notifications/initialized`. The server then knows the client's
 * capabilities (elicitation) as the first one did, and the client goes on
 * with the session id it has.
 *
 * The SDK has no API to resume a session on another process. The Node
 * transport wraps a web-standard one, which takes a `Request`: that inner
 * transport is reached by its field name, checked here, and the MCP cluster
 * test exercises it with the SDK version the lockfile pins.
 */
export async function replayInitialize(transport: StreamableHTTPServerTransport, sessionId: string, params: Record<string, unknown>): Promise<void> {
  const inner: unknown = Reflect.get(transport, "_webStandardTransport");
  if (!(inner instanceof WebStandardStreamableHTTPServerTransport)) throw new Error("this version of the MCP SDK keeps its transport differently: an MCP session cannot move between replicas");
  const answer = await inner.handleRequest(replayed({ jsonrpc: "2.0", id: "tether-replayed-initialize", method: "initialize", params }));
  const body = await answer.text();
  if (answer.status !== 200 || transport.sessionId !== sessionId) throw new Error(`the replayed initialize was refused (HTTP ${answer.status}): ${body.slice(0, 200)}`);
  // No protocol-version header: the transport then takes the version negotiated at initialize.
  const note = await inner.handleRequest(replayed({ jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": sessionId }));
  await note.text();
  if (note.status !== 202) throw new Error(`the replayed notifications/initialized was refused (HTTP ${note.status})`);
}

function replayed(message: unknown, headers: Record<string, string> = {}): Request {
  return new Request(REPLAY_URL, { method: "POST", headers: { ...REPLAY_HEADERS, ...headers }, body: JSON.stringify(message) });
}
