import { randomUUID } from "node:crypto";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { FastifyBaseLogger as Logger } from "fastify";
import type { OrchestratorConfig } from "../../config.js";
import { ErrorCodes, tetherError } from "../../errors.js";
import type { SessionRegistry } from "../../sessions/session-registry.js";
import { ownerMoving } from "../../cluster/front-router.js";
import type { AdapterBindings, McpSessionRecord } from "../../store/adapter-bindings.js";
import { SessionSlot, type SlotHooks } from "../common/session-slot.js";
import { createMcpServer } from "./mcp-server.js";
import { replayInitialize } from "./mcp-transport-restore.js";

/** What an McpSession tells the table that holds it. */
interface McpSessionTable {
  registered(session: McpSession): void;
  /** It bound (or replaced) its Tether session: the record must name it before a tool uses it. */
  bound(session: McpSession, tetherSessionId: string): Promise<void>;
  /**
   * It ended here; `keepRecord` when it goes on elsewhere (released, not
   * closed). Resolves false when the record names another replica: the
   * session was taken over, and its Tether session is not ours to delete.
   */
  forget(session: McpSession, keepRecord: boolean): Promise<boolean>;
}

/** One MCP session: its transport, its server, its (lazy) Tether session. */
export class McpSession {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  readonly slot: SessionSlot;
  /** The id its initialize answers with, known before (other replicas must find it before the client can use it). */
  readonly plannedId: string;
  lastActivityAt = Date.now();
  /** Tool calls running: an MCP session is never idled out under one (closing would abort it). */
  inFlight = 0;
  private closing: Promise<void> | undefined;
  private readonly metadata: Record<string, string> = { client: "mcp" };

  /** `options.id`: a session taken over from another replica keeps its id. */
  constructor(
    readonly tenant: string,
    /** The params of the client's initialize (what another replica replays to take the session over). */
    readonly initialize: Record<string, unknown>,
    deps: McpSessionsDeps,
    private readonly table: McpSessionTable,
    options: { id?: string } = {},
  ) {
    this.plannedId = options.id ?? `mcp_${randomUUID().replaceAll("-", "")}`;
    const hooks: SlotHooks = {
      ...deps.hooks,
      bind: async (previousId, session) => {
        await deps.hooks.bind?.(previousId, session);
        await table.bound(this, session.id);
      },
    };
    this.slot = new SessionSlot(deps.registry, tenant, this.metadata, hooks);
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

  /**
   * Closes the transport (in-flight requests are aborted) and deletes the
   * Tether session, unless another replica took the MCP session over (a
   * replica presumed dead that comes back must not stop a worker the
   * session's new owner uses). Idempotent.
   */
  close(reason: string): Promise<void> {
    this.closing ??= (async () => {
      const ours = await this.table.forget(this, false);
      await Promise.allSettled([this.transport.close(), ours ? this.slot.release(reason) : Promise.resolve()]);
    })();
    return this.closing;
  }

  /**
   * Lets the session go on elsewhere: the transport closes here (open
   * streams end; the client's next request reaches another replica, which
   * takes it over), the Tether session and the record stay. Idempotent.
   */
  release(): Promise<void> {
    if (this.closing) return this.closing;
    // Set before the transport closes: its onclose (synchronous, inside close()) must find the session ending already, not delete the Tether session.
    let done!: () => void;
    this.closing = new Promise<void>((resolve) => (done = resolve));
    void this.table.forget(this, true);
    void this.transport
      .close()
      .catch(() => undefined)
      .finally(() => done());
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
 * without requests (never while a tool call runs). In a cluster each has a
 * record every replica reads (where it lives, its initialize, its Tether
 * session), changed only from the replica it names: a session a drain lets
 * go, or whose replica died, is taken over by the replica its Tether session
 * goes to (mcp-routes.ts).
 */
export class McpSessions {
  private readonly byId = new Map<string, McpSession>();
  private readonly takingOver = new Map<string, Promise<McpSession | undefined>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly idleMs: number;

  /** How often idle sessions are looked for (and records refreshed). */
  readonly sweepMs: number;

  /** How long a record lives unless refreshed: as long as the session could idle, so a dead replica's sessions can still be taken over. */
  private readonly recordTtlMs: number;

  constructor(private readonly deps: McpSessionsDeps) {
    this.idleMs = deps.config.agents.mcpIdleTimeoutS * 1000;
    this.sweepMs = Math.min(60_000, Math.max(250, this.idleMs / 4));
    this.recordTtlMs = this.idleMs + 2 * this.sweepMs;
    this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
    this.sweeper.unref();
  }

  /** The tenant's MCP session with this id; undefined for an unknown id or another tenant's. */
  find(id: string, tenant: string): McpSession | undefined {
    const session = this.byId.get(id);
    return session?.tenant === tenant ? session : undefined;
  }

  /** A new MCP session for `tenant`, registered once its initialize succeeds; 429 over the tenant's cap. */
  open(tenant: string, initialize: Record<string, unknown>): McpSession {
    const held = [...this.byId.values()].filter((session) => session.tenant === tenant).length;
    const max = this.deps.config.agents.mcpMaxSessionsPerTenant;
    if (held >= max) {
      throw tetherError(ErrorCodes.SESSION_QUOTA_EXCEEDED, `The tenant already holds ${held} MCP sessions; the limit is ${max}.`, {
        retryAfterS: 30,
        hint: "End MCP sessions you no longer use (HTTP DELETE /mcp with their Mcp-Session-Id), or raise TETHER_MCP_MAX_SESSIONS_PER_TENANT.",
      });
    }
    return new McpSession(tenant, initialize, this.deps, this.table());
  }

  /**
   * Takes over an MCP session another replica let go or lost: the record
   * moves to this replica (undefined when another got it first), then a new
   * transport under the same id gets the client's initialize replayed, and
   * its tools the same Tether session. One takeover per id at a time.
   */
  takeOver(id: string, record: McpSessionRecord): Promise<McpSession | undefined> {
    let pending = this.takingOver.get(id);
    if (!pending) {
      pending = this.moveHere(id, record).finally(() => this.takingOver.delete(id));
      this.takingOver.set(id, pending);
    }
    return pending;
  }

  /** A takeover of `id` in flight here, if any. */
  takeOverInFlight(id: string): Promise<McpSession | undefined> | undefined {
    return this.takingOver.get(id);
  }

  private async moveHere(id: string, record: McpSessionRecord): Promise<McpSession | undefined> {
    const directory = this.deps.directory;
    if (!directory) return undefined;
    const moved = { ...record, replicaId: directory.replicaId };
    if (!(await directory.store.swapMcpSession(id, record.replicaId, moved, this.recordTtlMs))) return undefined;
    const session = new McpSession(record.tenant, record.initialize, this.deps, this.table(), { id });
    try {
      await session.server.connect(session.transport);
      await replayInitialize(session.transport, id, record.initialize);
    } catch (error) {
      // Nobody can serve it then: the client gets 404 and initializes again; the record says it is free.
      this.deps.logger.error({ err: error, mcpSession: id }, "could not take the MCP session over");
      await session.release();
      await directory.store.swapMcpSession(id, directory.replicaId, { ...record, replicaId: "" }, this.recordTtlMs).catch(() => undefined);
      return undefined;
    }
    session.slot.follow(record.tetherSessionId);
    this.deps.logger.info({ mcpSession: id, tenant: record.tenant, tetherSession: record.tetherSessionId, from: record.replicaId || "(released)" }, "MCP session taken over from another replica");
    return session;
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
        this.swap(session, this.recordOf(session)).then(
          (ours) => {
            if (!ours) this.lost(session);
          },
          (error: unknown) => this.deps.logger.warn({ err: error, mcpSession: session.id }, "could not refresh the MCP session's record"),
        );
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
    if (directory) await directory.store.putMcpSession(session.plannedId, this.recordOf(session), this.recordTtlMs);
  }

  /** Lets go of the MCP session bound to this Tether session (a drain hands that over): it goes where the Tether session goes. */
  async releaseFor(tetherSessionId: string): Promise<void> {
    await Promise.allSettled([...this.byId.values()].filter((session) => session.slot.id === tetherSessionId).map((session) => this.release(session)));
  }

  /** Lets go of every MCP session with no Tether session here (none yet, or it already moved): a drain's first step. */
  async releaseUnbound(): Promise<void> {
    await Promise.allSettled([...this.byId.values()].filter((session) => !session.slot.peek()).map((session) => this.release(session)));
  }

  async closeAll(reason: string): Promise<void> {
    clearInterval(this.sweeper);
    // In a cluster, what is still here goes on elsewhere (its Tether session is handed over, or taken over once this replica is gone).
    if (this.deps.directory) await Promise.allSettled([...this.byId.values()].map((session) => this.release(session)));
    else await Promise.allSettled([...this.byId.values()].map((session) => session.close(reason)));
  }

  /** The record first, then the transport: a request arriving meanwhile is still served here, the next one finds it released. */
  private async release(session: McpSession): Promise<void> {
    // False (another replica holds the record already) changes nothing here: it goes either way.
    await this.swap(session, { ...this.recordOf(session), replicaId: "" }).catch((error: unknown) => this.deps.logger.warn({ err: error, mcpSession: session.id }, "could not release the MCP session's record; it moves once this replica is gone"));
    this.deps.logger.info({ mcpSession: session.id, tetherSession: session.slot.id }, "MCP session released for another replica to take over");
    await session.release();
  }

  private recordOf(session: McpSession): McpSessionRecord {
    return { replicaId: this.deps.directory?.replicaId ?? "", tenant: session.tenant, tetherSessionId: session.slot.id ?? null, initialize: session.initialize };
  }

  /** Changes the record only while it names this replica (refresh, bind, release, removal); false when it names another (or is gone). */
  private async swap(session: McpSession, record: McpSessionRecord | null): Promise<boolean> {
    const directory = this.deps.directory;
    return directory ? directory.store.swapMcpSession(session.plannedId, directory.replicaId, record, this.recordTtlMs) : true;
  }

  /** Another replica took the session over (this one was presumed dead): stop serving it here, touch nothing it uses now. */
  private lost(session: McpSession): void {
    this.deps.logger.warn({ mcpSession: session.id }, "another replica took the MCP session over; letting it go here");
    void session.release();
  }

  private table(): McpSessionTable {
    return {
      registered: (session) => {
        if (session.id !== undefined) this.byId.set(session.id, session);
      },
      bound: async (session, tetherSessionId) => {
        if (await this.swap(session, { ...this.recordOf(session), tetherSessionId })) return;
        this.lost(session);
        throw ownerMoving();
      },
      forget: async (session, keepRecord) => {
        if (session.id !== undefined && this.byId.get(session.id) === session) this.byId.delete(session.id);
        if (keepRecord) return true;
        // Also an initialize that failed: its announced record goes. Unreachable store: as before, ours.
        return this.swap(session, null).catch((error: unknown) => {
          this.deps.logger.warn({ err: error, mcpSession: session.plannedId }, "could not remove the MCP session's record");
          return true;
        });
      },
    };
  }
}
