import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { withTestCluster, type TestCluster } from "./helpers/cluster.js";
import { textOf } from "./helpers/mcp.js";
import { KEYS } from "./helpers/orchestrator.js";

/** The MCP idle timeout of this cluster, short enough to wait out. */
const IDLE_S = 6;

/**
 * An MCP client that never comes back after its replica shut down: its MCP
 * session (and the Tether session its tools used) still idles out and is
 * deleted, on whichever replica took it over, instead of being kept (and
 * counted against the tenant's quota) for good.
 */
describe("MCP sessions nobody comes back for, in a cluster", () => {
  let cluster: TestCluster;
  let redis: Redis;

  withTestCluster({ replicas: 2, env: { TETHER_MCP_IDLE_TIMEOUT_S: String(IDLE_S) } }, (started, client) => {
    cluster = started;
    redis = client;
  });

  it("a drained replica's MCP session whose client never returns is taken over and idles out: its Tether session is deleted", { timeout: 120_000 }, async () => {
    const [holder] = cluster.replicas;
    const client = new Client({ name: "gone-client", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(`${holder!.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${KEYS.alice}` } } });
    await client.connect(transport);
    const mcpSession = transport.sessionId ?? "";
    const result = CallToolResultSchema.parse(await client.callTool({ name: "run_code", arguments: { code: "'used'" } }));
    expect(textOf(result)).toContain("used");
    const ofMcpSession = async () => (await cluster.alice.listSessions()).sessions.filter((session) => session.metadata.mcpSession === mcpSession);
    expect(await ofMcpSession()).toHaveLength(1);

    // The holder shuts down; the client never sends anything again.
    expect(await cluster.stop(holder!)).toBe(0);
    const stoppedAt = Date.now();
    const deadline = stoppedAt + 60_000;
    while ((await ofMcpSession()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await ofMcpSession()).toEqual([]);
    expect(await redis.exists(`tether:mcp:${mcpSession}`)).toBe(0);
    console.log(`abandoned MCP session deleted ${Date.now() - stoppedAt} ms after its replica stopped (idle timeout ${IDLE_S} s)`);
    await client.close().catch(() => undefined);
  });
});
