import { randomUUID } from "node:crypto";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { FastifyBaseLogger as Logger } from "fastify";
import type { OrchestratorConfig } from "../../config.js";
import { ErrorCodes, tetherError } from "../../errors.js";
import type { SessionRegistry } from "../../sessions/session-registry.js";
import type { AdapterBindings } from "../../store/adapter-bindings.js";
import { SessionSlot, type SlotHooks } from "../common/session-slot.js";
import { createMcpServer } from "./mcp-server.js";

/** One MCP session: its transport, its server, its (lazy) Tether session. */
export class McpSession {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  readonly slot: SessionSlot;
  /** The id its initialize answers with, known before (other replicas must find it before the client can use it). */
  readonly plannedId = `mcp_${randomUUID().replaceAll("-", "")}`;
  lastActivityAt = Date.now();
  /** Tool calls running: an MCP session is never idled out under one (closing would abort it). */
  inFlight = 0;
  private closing: Promise<void> | undefined;
  private readonly metadata: Record<string, string> = { client: "mcp" };

  constructor(
    readonly tenant: string,
    deps: McpSessionsDeps,
    private readonly table: { registered(session: McpSession): void; forget(session: McpSession): void },
  ) {
    this.slot = new SessionSlot(deps.registry, tenant, this.metadata, deps.hooks);
    this.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => this.plannedId,
      onsessioninitialized: (id) => {
        this.metadata.mcpSession = id;
        table.registered(this);
      },
      // DELETE: answered once the Tether session is deleted, so the client knows it is gone.
      onsessionclosed: () => this.close("the client ended the MCP session"),
    });
    // Before connect: the server chains its own handler after this one.
    this.transport.onclose = () => void this.close("the MCP transport closed");
    this.server = createMcpServer({
      slot: this.slot,
      config: deps.config,
      logger: deps.logger.child({ tenant }),
      beginCall: () => {
        this.inFlight += 1;
        this.lastActivityAt = Date.now();
        return () => {
          this.inFlight -= 1;
          this.lastActivityAt = Date.now();
        };
      },
    });
  }

  get id(): string | undefined {
    return this.transport.sessionId;
  }

  /** Closes the transport (in-flight requests are aborted) and deletes the Tether session. Idempotent. */
  close(reason: string): Promise<void> {
    this.closing ??= (async () => {
      this.table.forget(this);
      await Promise.allSettled([this.transport.close(), this.slot.release(reason)]);
    })();
    return this.closing;
  }
}

export interface McpSessionsDeps {
  registry: SessionRegistry;
  /** How its Tether sessions are made and run code (cluster-aware). */
  hooks: SlotHooks;
  config: OrchestratorConfig;
  logger: Logger;
  /** In a cluster: where every replica looks up which replica holds an MCP session. */
  directory?: { store: AdapterBindings; replicaId: string };
}

/**
 * The open MCP sessions, by MCP session id: each owned by the tenant that
 * initialized it, capped per tenant, closed after TETHER_MCP_IDLE_TIMEOUT_S
 * without requests (never while a tool call runs).
 */
export class McpSessions {
  private readonly byId = new Map<string, McpSession>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly idleMs: number;

  /** How long a record lives unless the next sweep refreshes it: a replica that died stops refreshing. */
  private readonly recordTtlMs: number;

  constructor(private readonly deps: McpSessionsDeps) {
    this.idleMs = deps.config.agents.mcpIdleTimeoutS * 1000;
    const sweepMs = Math.min(60_000, Math.max(250, this.idleMs / 4));
    this.recordTtlMs = 3 * sweepMs + 5000;
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  /** The tenant's MCP session with this id; undefined for an unknown id or another tenant's. */
  find(id: string, tenant: string): McpSession | undefined {
    const session = this.byId.get(id);
    return session?.tenant === tenant ? session : undefined;
  }

  /** A new MCP session for `tenant`, registered once its initialize succeeds; 429 over the tenant's cap. */
  open(tenant: string): McpSession {
    const held = [...this.byId.values()].filter((session) => session.tenant === tenant).length;
    const max = this.deps.config.agents.mcpMaxSessionsPerTenant;
    if (held >= max) {
      throw tetherError(ErrorCodes.SESSION_QUOTA_EXCEEDED, `The tenant already holds ${held} MCP sessions; the limit is ${max}.`, {
        retryAfterS: 30,
        hint: "End MCP sessions you no longer use (HTTP DELETE /mcp with their Mcp-Session-Id), or raise TETHER_MCP_MAX_SESSIONS_PER_TENANT.",
      });
    }
    return new McpSession(tenant, this.deps, {
      registered: (session) => {
        if (session.id !== undefined) this.byId.set(session.id, session);
      },
      forget: (session) => {
        if (session.id !== undefined && this.byId.get(session.id) === session) this.byId.delete(session.id);
        // Also an initialize that failed: its announced record goes.
        this.deps.directory?.store
          .deleteMcpSession(session.plannedId)
          .catch((error: unknown) => this.deps.logger.warn({ err: error, mcpSession: session.plannedId }, "could not remove the MCP session's record"));
      },
    });
  }

  get size(): number {
    return this.byId.size;
  }

  /** Closes MCP sessions idle for longer than the timeout; refreshes the others' records. */
  sweep(now = Date.now()): void {
    for (const session of this.byId.values()) {
      if (session.inFlight === 0 && now - session.lastActivityAt >= this.idleMs) {
        this.deps.logger.info({ mcpSession: session.id, tenant: session.tenant }, "MCP session idle; closing it");
        void session.close(`the MCP session was idle for ${this.deps.config.agents.mcpIdleTimeoutS} s`);
      } else {
        this.record(session);
      }
    }
  }

  /**
   * In a cluster, records the session before its initialize is answered:
   * the client's next request may reach any replica (503 STORE_UNAVAILABLE
   * when Redis is down: nothing was opened).
   */
  async announce(session: McpSession): Promise<void> {
    const directory = this.deps.directory;
    if (directory) await directory.store.putMcpSession(session.plannedId, { replicaId: directory.replicaId, tenant: session.tenant }, this.recordTtlMs);
  }

  /** Refreshes the record every replica reads (each sweep while the session lives). */
  private record(session: McpSession): void {
    this.announce(session).catch((error: unknown) => this.deps.logger.warn({ err: error, mcpSession: session.id }, "could not record the MCP session: other replicas answer 404 for it"));
  }

  async closeAll(reason: string): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.byId.values()].map((session) => session.close(reason)));
  }
}
