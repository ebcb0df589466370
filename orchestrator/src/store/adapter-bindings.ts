/**
 * The agent adapters' state every replica must see, so that any replica
 * serves any adapter request (no affinity): which Tether session a
 * dynamic-sessions identifier names, and which replica holds an MCP session
 * (its transport lives in that replica's memory). Part of the ClusterStore:
 * memory for one process, Redis for a cluster.
 */

/** A tenant's dynamic-sessions identifier and the Tether session behind it. */
export interface IdentifierBinding {
  /** null while `replicaId` creates it (the first request claimed the identifier there). */
  sessionId: string | null;
  /** The replica that claimed the identifier or bound its current session. */
  replicaId: string;
  /** When the identifier was first used (ISO): the service's `createdAt`. */
  createdAt: string;
  etag: string;
}

/**
 * Where an MCP session's transport lives, whose it is, and what another
 * replica needs to take it over when that one lets it go or dies: the
 * client's initialize (replayed into a new transport) and the Tether session
 * its tools use.
 */
export interface McpSessionRecord {
  /** "" once its replica let it go (a drain): the next request moves it. */
  replicaId: string;
  tenant: string;
  /** The Tether session of its tools, null before the first tool call. */
  tetherSessionId: string | null;
  /** The params of the client's initialize request. */
  initialize: Record<string, unknown>;
}

export interface AdapterBindings {
  /** The identifier's binding, if any. */
  getIdentifier(tenant: string, identifier: string): Promise<IdentifierBinding | undefined>;
  /** Binds an unbound identifier, atomically across replicas: `won` false returns the binding another request put first. */
  claimIdentifier(tenant: string, identifier: string, binding: IdentifierBinding): Promise<{ won: boolean; binding: IdentifierBinding }>;
  /** Replaces the binding only while it still names `expectedSessionId`; false when it changed (or was removed). */
  rebindIdentifier(tenant: string, identifier: string, expectedSessionId: string | null, binding: IdentifierBinding): Promise<boolean>;
  /** Removes the binding while it still names `expectedSessionId`. */
  unbindIdentifier(tenant: string, identifier: string, expectedSessionId: string | null): Promise<void>;

  /** Records where a new MCP session lives, for `ttlMs`: a record nobody refreshes goes away. */
  putMcpSession(mcpSessionId: string, record: McpSessionRecord, ttlMs: number): Promise<void>;
  /**
   * Replaces the record (null: removes it) only while it names
   * `expectedReplicaId`: a refresh, a release or a takeover never undoes
   * another replica's. False when it named another (or is gone).
   */
  swapMcpSession(mcpSessionId: string, expectedReplicaId: string, record: McpSessionRecord | null, ttlMs: number): Promise<boolean>;
  getMcpSession(mcpSessionId: string): Promise<McpSessionRecord | undefined>;
  /** Every MCP session record (a sweep looks for those nobody holds). */
  listMcpSessions(): Promise<[string, McpSessionRecord][]>;
  deleteMcpSession(mcpSessionId: string): Promise<void>;
}

/** The embedded implementation: maps in one process. */
export class MemoryAdapterBindings implements AdapterBindings {
  private readonly identifiers = new Map<string, IdentifierBinding>();
  private readonly mcp = new Map<string, { record: McpSessionRecord; expiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async getIdentifier(tenant: string, identifier: string): Promise<IdentifierBinding | undefined> {
    return this.identifiers.get(identifierKey(tenant, identifier));
  }

  async claimIdentifier(tenant: string, identifier: string, binding: IdentifierBinding): Promise<{ won: boolean; binding: IdentifierBinding }> {
    const key = identifierKey(tenant, identifier);
    const current = this.identifiers.get(key);
    if (current) return { won: false, binding: current };
    this.identifiers.set(key, binding);
    return { won: true, binding };
  }

  async rebindIdentifier(tenant: string, identifier: string, expectedSessionId: string | null, binding: IdentifierBinding): Promise<boolean> {
    const key = identifierKey(tenant, identifier);
    if (this.identifiers.get(key)?.sessionId !== expectedSessionId) return false;
    this.identifiers.set(key, binding);
    return true;
  }

  async unbindIdentifier(tenant: string, identifier: string, expectedSessionId: string | null): Promise<void> {
    const key = identifierKey(tenant, identifier);
    if (this.identifiers.get(key)?.sessionId === expectedSessionId) this.identifiers.delete(key);
  }

  async putMcpSession(mcpSessionId: string, record: McpSessionRecord, ttlMs: number): Promise<void> {
    this.mcp.set(mcpSessionId, { record, expiresAt: this.now() + ttlMs });
  }

  async getMcpSession(mcpSessionId: string): Promise<McpSessionRecord | undefined> {
    const entry = this.mcp.get(mcpSessionId);
    if (entry && entry.expiresAt <= this.now()) this.mcp.delete(mcpSessionId);
    return entry && entry.expiresAt > this.now() ? entry.record : undefined;
  }

  async listMcpSessions(): Promise<[string, McpSessionRecord][]> {
    const now = this.now();
    return [...this.mcp.entries()].filter(([, entry]) => entry.expiresAt > now).map(([id, entry]) => [id, entry.record]);
  }

  async swapMcpSession(mcpSessionId: string, expectedReplicaId: string, record: McpSessionRecord | null, ttlMs: number): Promise<boolean> {
    if ((await this.getMcpSession(mcpSessionId))?.replicaId !== expectedReplicaId) return false;
    if (record) this.mcp.set(mcpSessionId, { record, expiresAt: this.now() + ttlMs });
    else this.mcp.delete(mcpSessionId);
    return true;
  }

  async deleteMcpSession(mcpSessionId: string): Promise<void> {
    this.mcp.delete(mcpSessionId);
  }
}

/** A stored MCP session record read back; undefined for anything malformed. */
export function parseMcpSessionRecord(text: string | null): McpSessionRecord | undefined {
  if (text === null) return undefined;
  try {
    const value = JSON.parse(text) as Partial<McpSessionRecord>;
    if (typeof value.replicaId !== "string" || typeof value.tenant !== "string") return undefined;
    if (typeof value.initialize !== "object" || value.initialize === null || Array.isArray(value.initialize)) return undefined;
    const tetherSessionId = typeof value.tetherSessionId === "string" ? value.tetherSessionId : null;
    return { replicaId: value.replicaId, tenant: value.tenant, tetherSessionId, initialize: value.initialize };
  } catch {
    return undefined;
  }
}

function identifierKey(tenant: string, identifier: string): string {
  return `${tenant}\u0000${identifier}`;
}

/** A stored binding read back; undefined for anything malformed. */
export function parseIdentifierBinding(text: string | null): IdentifierBinding | undefined {
  if (text === null) return undefined;
  try {
    const value = JSON.parse(text) as Partial<IdentifierBinding>;
    if ((typeof value.sessionId !== "string" && value.sessionId !== null) || typeof value.replicaId !== "string" || typeof value.createdAt !== "string" || typeof value.etag !== "string") return undefined;
    return { sessionId: value.sessionId, replicaId: value.replicaId, createdAt: value.createdAt, etag: value.etag };
  } catch {
    return undefined;
  }
}
