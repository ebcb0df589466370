import type { ServerResponse } from "node:http";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { errorMessage } from "../../errors.js";
import type { AppContext, RouteScope } from "../../routes/route-context.js";
import { adapterSessionHooks } from "../common/adapter-sessions.js";
import { routeMcpRequest, takeOverOrphanedMcpSessions } from "./mcp-session-routing.js";
import { McpSessions, type McpSession } from "./mcp-sessions.js";
import { assertOriginAllowed } from "./origin-check.js";

export const MCP_PATH = "/mcp";

/** JSON-RPC error codes the Streamable HTTP transport uses outside a request. */
const SESSION_NOT_FOUND = -32001;
const BAD_REQUEST = -32000;
/** Largest initialize params accepted (as JSON text, UTF-8). */
const MAX_INITIALIZE_PARAMS_BYTES = 16 * 1024;

/**
 * The MCP server over Streamable HTTP at /mcp (POST, GET, DELETE). Register
 * it in the authenticated scope: every request carries the tenant's API
 * key, and an MCP session answers only the tenant that opened it. One
 * McpServer and transport per MCP session; fastify parses the body, the
 * SDK's transport takes the raw request and response from there.
 */
export function registerMcpRoutes(scope: RouteScope, context: AppContext): void {
  const cluster = context.cluster;
  const sessions = new McpSessions({
    registry: context.registry,
    config: context.config,
    logger: scope.log.child({ adapter: "mcp" }),
    hooks: adapterSessionHooks(context),
    ...(cluster ? { directory: { store: context.store.adapters, replicaId: cluster.replicaId } } : {}),
  });
  scope.addHook("preClose", async () => sessions.closeAll("the orchestrator is shutting down"));
  const policy = { allowed: context.config.agents.mcpAllowedOrigins, publicUrl: context.config.publicUrl };

  // In a cluster an MCP session lives in the memory of one replica: a request for it reaching another
  // goes there, streamed both ways (SSE answers, the GET stream), or moves it here when its replica let it
  // go or is gone (mcp-session-routing.ts).
  if (cluster) {
    const routing = { cluster, store: context.store.adapters, sessions };
    // A drain: sessions with no Tether session here go at once; the others as theirs is handed over.
    cluster.beforeHandOver(() => sessions.releaseUnbound());
    cluster.onSessionHandOver((session) => sessions.releaseFor(session.id));
    const orphans = setInterval(() => {
      takeOverOrphanedMcpSessions(routing).catch((error: unknown) => scope.log.warn({ err: error }, "could not look for MCP sessions nobody holds"));
    }, sessions.sweepMs);
    orphans.unref();
    scope.addHook("preClose", async () => clearInterval(orphans));
    scope.addHook("onRequest", async (request, reply) => {
      const id = request.headers["mcp-session-id"];
      if (typeof id !== "string" || sessions.find(id, request.tenant)) return;
      const route = await routeMcpRequest(id, request.tenant, routing);
      if (!route) return;
      if (route.kind === "forward") request.log.info({ mcpSession: id, replicaId: route.replica.replicaId }, "MCP request forwarded to the replica holding its session");
      reply.hijack();
      cluster.pass(request.raw, reply.raw, route);
    });
  }

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const sessionId = request.headers["mcp-session-id"];
    const body: unknown = request.body;
    let session: McpSession | undefined;
    if (typeof sessionId === "string") {
      session = sessions.find(sessionId, request.tenant);
      // Unknown, expired, or another tenant's: the client must initialize again.
      if (!session) return sendJsonRpcError(reply, 404, SESSION_NOT_FOUND, "Session not found", "The MCP session ended (closed, idle, or the orchestrator restarted): initialize a new one.");
    } else {
      if (request.method !== "POST" || !isInitializeRequest(body)) {
        return sendJsonRpcError(reply, 400, BAD_REQUEST, "Bad Request: No valid session ID provided", "Send initialize first, then the Mcp-Session-Id header it returns on every request.");
      }
      // Its params are kept in Redis for as long as the session lives (another replica replays them): a client's are a few hundred bytes.
      if (Buffer.byteLength(JSON.stringify(body.params)) > MAX_INITIALIZE_PARAMS_BYTES) {
        return sendJsonRpcError(reply, 400, BAD_REQUEST, "Bad Request: initialize params too large", `Send initialize params under ${MAX_INITIALIZE_PARAMS_BYTES} bytes of JSON (client info and capabilities).`);
      }
      session = sessions.open(request.tenant, body.params);
      await sessions.announce(session);
      await session.server.connect(session.transport);
    }
    session.lastActivityAt = Date.now();
    // Headers hooks set so far (CORS for an allowed browser origin) would be lost with the hijack.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
    // From here the transport owns the response: fastify must not finish it.
    reply.hijack();
    try {
      await session.transport.handleRequest(request.raw, reply.raw, body);
    } catch (error) {
      request.log.error({ err: error }, "the MCP transport failed a request");
      failRaw(reply.raw, errorMessage(error));
    }
    // An initialize that failed (bad protocol version, bad params) leaves a transport nobody can reach.
    if (session.id === undefined) await session.close("initialize failed");
  };

  const config = {
    onRequest: async (request: FastifyRequest) => assertOriginAllowed(request.headers.origin, request.socket.localPort, policy),
  };
  const describe = (summary: string) => ({ tags: ["mcp"], summary, description: MCP_DESCRIPTION, security: [{ bearer: [] }] });
  scope.post(MCP_PATH, { ...config, schema: { ...describe("MCP Streamable HTTP: send JSON-RPC messages"), body: Type.Unknown({ description: "A JSON-RPC 2.0 message or batch" }) } }, handle);
  scope.get(MCP_PATH, { ...config, schema: describe("MCP Streamable HTTP: open the server-to-client event stream") }, handle);
  scope.delete(MCP_PATH, { ...config, schema: describe("MCP Streamable HTTP: end the MCP session (deletes its Tether session)") }, handle);
}

const MCP_DESCRIPTION =
  "Model Context Protocol server (Streamable HTTP, protocol 2025-06-18 and earlier). Tools: run_code, list_files, read_file, write_file, restart_kernel. " +
  "Each MCP session gets its own Tether session on first tool use, deleted when the MCP session ends (DELETE) or idles out (TETHER_MCP_IDLE_TIMEOUT_S). " +
  "An unknown Mcp-Session-Id answers 404 (JSON-RPC -32001): initialize again.";

function sendJsonRpcError(reply: FastifyReply, status: number, code: number, message: string, hint: string): FastifyReply {
  return reply.code(status).send({ jsonrpc: "2.0", error: { code, message, data: { hint } }, id: null });
}

/** After hijack, an error is answered on the raw response if nothing was sent yet, else the stream is cut. */
function failRaw(response: ServerResponse, message: string): void {
  if (!response.headersSent) {
    response.writeHead(500, { "content-type": "application/json" });
    response.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32603, message: `Internal error: ${message}` }, id: null }));
  } else if (!response.writableEnded) {
    response.destroy();
  }
}
