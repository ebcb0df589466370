import type { Redis } from "ioredis";
import { parseIdentifierBinding, parseMcpSessionRecord, type AdapterBindings, type IdentifierBinding, type McpSessionRecord } from "./adapter-bindings.js";

/**
 * KEYS: binding. ARGV: expected session id ("" for none yet), new binding JSON ("" removes it).
 * 1 when the binding still named the expected session and was replaced.
 */
const SWAP_BINDING = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local sid = cjson.decode(cur).sessionId
if type(sid) ~= 'string' then sid = '' end
if sid ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1`;

/**
 * KEYS: MCP session record. ARGV: expected replica id, new stored value ("" removes it), ttl ms.
 * 1 when the record named the expected replica and was replaced. The stored
 * value is "<replica id>\n<record JSON>": the script compares the prefix and
 * never decodes the JSON (Lua's cjson refuses what JSON.stringify writes for
 * a lone surrogate, which a client's initialize may carry).
 */
const SWAP_MCP_SESSION = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local sep = string.find(cur, string.char(10), 1, true)
if not sep or string.sub(cur, 1, sep - 1) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3])) end
return 1`;

/**
 * The adapters' bindings in Redis: one key per tenant and identifier (both
 * percent-encoded into the key), changed only by SET NX and a
 * compare-and-swap script, so two replicas never bind one identifier to two
 * sessions; MCP session records with a TTL their replica refreshes.
 */
/** How long an identifier may stay claimed by a replica that has not bound it to a session yet. */
const UNBOUND_CLAIM_TTL_MS = 10 * 60_000;

export class RedisAdapterBindings implements AdapterBindings {
  constructor(
    private readonly redis: Redis,
    private readonly key: (...parts: string[]) => string,
    private readonly call: <T>(work: () => Promise<T>) => Promise<T>,
  ) {}

  private identifierKey(tenant: string, identifier: string): string {
    return this.key("ds", encodeURIComponent(tenant), encodeURIComponent(identifier));
  }

  async getIdentifier(tenant: string, identifier: string): Promise<IdentifierBinding | undefined> {
    return parseIdentifierBinding(await this.call(() => this.redis.get(this.identifierKey(tenant, identifier))));
  }

  async claimIdentifier(tenant: string, identifier: string, binding: IdentifierBinding): Promise<{ won: boolean; binding: IdentifierBinding }> {
    const key = this.identifierKey(tenant, identifier);
    for (;;) {
      // A claim still creating its session (sessionId null) lapses if that never finishes (a failed start, a dead replica); a bound one stays.
      const set = await this.call(() => (binding.sessionId === null ? this.redis.set(key, JSON.stringify(binding), "PX", UNBOUND_CLAIM_TTL_MS, "NX") : this.redis.set(key, JSON.stringify(binding), "NX")));
      if (set === "OK") return { won: true, binding };
      const current = await this.getIdentifier(tenant, identifier);
      // Removed between the two calls: try again.
      if (current) return { won: false, binding: current };
    }
  }

  async rebindIdentifier(tenant: string, identifier: string, expectedSessionId: string | null, binding: IdentifierBinding): Promise<boolean> {
    const swapped = await this.call(() => this.redis.eval(SWAP_BINDING, 1, this.identifierKey(tenant, identifier), expectedSessionId ?? "", JSON.stringify(binding)));
    return swapped === 1;
  }

  async unbindIdentifier(tenant: string, identifier: string, expectedSessionId: string | null): Promise<void> {
    await this.call(() => this.redis.eval(SWAP_BINDING, 1, this.identifierKey(tenant, identifier), expectedSessionId ?? "", ""));
  }

  async putMcpSession(mcpSessionId: string, record: McpSessionRecord, ttlMs: number): Promise<void> {
    await this.call(() => this.redis.set(this.key("mcp", mcpSessionId), storedMcpRecord(record), "PX", ttlMs));
  }

  async getMcpSession(mcpSessionId: string): Promise<McpSessionRecord | undefined> {
    return parseStoredMcpRecord(await this.call(() => this.redis.get(this.key("mcp", mcpSessionId))));
  }

  async listMcpSessions(): Promise<[string, McpSessionRecord][]> {
    const prefix = this.key("mcp", "");
    const found: [string, McpSessionRecord][] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.call(() => this.redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500));
      cursor = next;
      if (keys.length === 0) continue;
      const values = await this.call(() => this.redis.mget(keys));
      keys.forEach((key, index) => {
        const record = parseStoredMcpRecord(values[index] ?? null);
        if (record) found.push([key.slice(prefix.length), record]);
      });
    } while (cursor !== "0");
    return found;
  }

  async swapMcpSession(mcpSessionId: string, expectedReplicaId: string, record: McpSessionRecord | null, ttlMs: number): Promise<boolean> {
    const swapped = await this.call(() => this.redis.eval(SWAP_MCP_SESSION, 1, this.key("mcp", mcpSessionId), expectedReplicaId, record ? storedMcpRecord(record) : "", String(ttlMs)));
    return swapped === 1;
  }

  async deleteMcpSession(mcpSessionId: string): Promise<void> {
    await this.call(() => this.redis.del(this.key("mcp", mcpSessionId)));
  }
}

/** A stored MCP session record read back; undefined for anything malformed. */
function parseStoredMcpRecord(stored: string | null): McpSessionRecord | undefined {
  const sep = stored?.indexOf("\n") ?? -1;
  return stored && sep >= 0 ? parseMcpSessionRecord(stored.slice(sep + 1)) : undefined;
}

/** An MCP session record as Redis keeps it: the replica id SWAP_MCP_SESSION compares, then the JSON. */
function storedMcpRecord(record: McpSessionRecord): string {
  return `${record.replicaId}\n${JSON.stringify(record)}`;
}
