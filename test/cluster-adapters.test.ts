import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { withTestCluster, type Replica, type TestCluster } from "./helpers/cluster.js";
import { field, multipart, replay } from "./helpers/dynamic-sessions.js";
import { freshConnectionFetch } from "./helpers/fresh-connection-fetch.js";
import { rawMcpPost, textOf } from "./helpers/mcp.js";
import { KEYS } from "./helpers/orchestrator.js";

/** How many log lines of `replica` contain `text`. */
async function logLines(replica: Replica, text: string): Promise<number> {
  return (await readFile(replica.logFile, "utf8")).split("\n").filter((line) => line.includes(text)).length;
}

/** `elicit`: the client declares elicitation and answers prompts (input()) with it. */
async function mcpClient(url: string, elicit?: (message: string) => string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: "tether-cluster-test", version: "1.0.0" }, { capabilities: elicit ? { elicitation: {} } : {} });
  if (elicit) client.setRequestHandler(ElicitRequestSchema, (request) => ({ action: "accept", content: { value: elicit(request.params.message) } }));
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { fetch: freshConnectionFetch, requestInit: { headers: { Authorization: `Bearer ${KEYS.alice}` } } });
  await client.connect(transport);
  return { client, transport };
}

async function runCode(client: Client, code: string): Promise<string> {
  const result = CallToolResultSchema.parse(await client.callTool({ name: "run_code", arguments: { code } }, CallToolResultSchema, { timeout: 120_000 }));
  if (result.isError) throw new Error(`run_code failed: ${textOf(result)}`);
  return textOf(result);
}

/**
 * The agent adapters through three replicas behind a round-robin balancer,
 * with no affinity: each request may reach any replica.
 */
describe("agent adapters in a cluster of replicas", () => {
  let cluster: TestCluster;
  let redis: Redis;
  /** The replica whose record holds the MCP session now. */
  const mcpHolder = async (mcpSession: string): Promise<Replica | undefined> => {
    // Stored as "<replica id>\n<record JSON>".
    const raw = await redis.get(`tether:mcp:${mcpSession}`);
    const replicaId = raw?.slice(0, raw.indexOf("\n"));
    return cluster.replicas.find((replica) => replica.replicaId === replicaId);
  };
  /** The Tether sessions an MCP session's tools use (listed through any replica). */
  const ofMcpSession = async (mcpSession: string) => (await cluster.alice.listSessions()).sessions.filter((session) => session.metadata.mcpSession === mcpSession);

  withTestCluster({}, (started, client) => {
    cluster = started;
    redis = client;
  });

  it("serves one MCP session from any replica: run_code keeps its variables while requests land on every replica", { timeout: 240_000 }, async () => {
    const { client, transport } = await mcpClient(cluster.url);
    const mcpSession = transport.sessionId ?? "";
    expect(mcpSession).toMatch(/^mcp_/);
    const holder = await redis.get(`tether:mcp:${mcpSession}`);
    const owner = cluster.replicas.find((replica) => holder?.includes(replica.replicaId));
    expect(owner).toBeDefined();

    expect(await runCode(client, "x = 1\nx")).toContain("1");
    for (let i = 2; i <= 5; i++) expect(await runCode(client, "x = x + 1\nx")).toContain(String(i));

    // Every replica saw MCP requests; the ones that do not hold the session forwarded theirs to the one that does.
    const others = cluster.replicas.filter((replica) => replica !== owner);
    for (const replica of cluster.replicas) expect(await logLines(replica, '"url":"/mcp"')).toBeGreaterThan(0);
    const forwarded = await Promise.all(others.map((replica) => logLines(replica, "MCP request forwarded to the replica holding its session")));
    expect(forwarded.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(await logLines(owner!, "MCP request forwarded to the replica holding its session")).toBe(0);

    // DELETE through any replica ends it everywhere: the record goes, and a later request is 404.
    await transport.terminateSession();
    expect(await redis.exists(`tether:mcp:${mcpSession}`)).toBe(0);
    for (const replica of cluster.replicas) {
      const answer = await rawMcpPost(replica.url, KEYS.alice, { jsonrpc: "2.0", id: 9, method: "tools/list" }, { sessionId: mcpSession });
      expect(answer.status).toBe(404);
    }
    await client.close();
  });

  it("an MCP session whose replica died (kill -9) goes on through the survivors with its variables: 503 (retry) until the cluster notices, then taken over", { timeout: 240_000 }, async () => {
    const { client, transport } = await mcpClient(cluster.url);
    const mcpSession = transport.sessionId ?? "";
    expect(await runCode(client, "y = 7\ny")).toContain("7");
    const owner = (await mcpHolder(mcpSession))!;
    const tetherSession = (await ofMcpSession(mcpSession))[0]!.id;
    await cluster.kill(owner);

    // The same client, the same Mcp-Session-Id: tool calls fail with 503 while the dead replica still counts as present.
    const deadline = Date.now() + 60_000;
    let failures = 0;
    let answer: string | undefined;
    while (Date.now() < deadline && answer === undefined) {
      try {
        answer = await runCode(client, "y + 1");
      } catch (error) {
        expect(String(error)).toMatch(/SESSION_OWNER_UNAVAILABLE/);
        // Which replica, never its internal address.
        expect(String(error)).not.toMatch(/127\.0\.0\.1|:\d{4,5}\b/);
        failures += 1;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(answer).toContain("8");
    expect(transport.sessionId).toBe(mcpSession);
    const holder = await mcpHolder(mcpSession);
    expect(holder).toBeDefined();
    expect(holder).not.toBe(owner);
    // The same Tether session (adopted by the failover), now served where the MCP session is.
    expect((await ofMcpSession(mcpSession)).map((session) => session.id)).toEqual([tetherSession]);
    expect(await cluster.ownerOf(tetherSession)).toBe(holder);
    console.log(`MCP session after kill -9: ${failures} tool calls refused with 503 before the takeover`);
    await transport.terminateSession();
    expect(await ofMcpSession(mcpSession)).toEqual([]);
    await client.close();
    await cluster.restart(owner);
  });

  it("a replica shutting down (SIGTERM) lets its MCP sessions go with their Tether sessions: the same client goes on with its variables and files, no call refused", { timeout: 240_000 }, async () => {
    const asked: string[] = [];
    const { client, transport } = await mcpClient(cluster.url, (message) => {
      asked.push(message);
      return "Ada";
    });
    const mcpSession = transport.sessionId ?? "";
    expect(await runCode(client, "w = 1\nw")).toContain("1");
    const written = CallToolResultSchema.parse(await client.callTool({ name: "write_file", arguments: { path: "kept.txt", content: "across the restart" } }));
    expect(written.isError ?? false).toBe(false);
    const [tetherSession] = await ofMcpSession(mcpSession);
    const owner = (await mcpHolder(mcpSession))!;
    // A session never used by a tool moves too.
    const idle = await mcpClient(cluster.url);
    const idleOwner = await mcpHolder(idle.transport.sessionId ?? "");

    expect(await cluster.stop(owner)).toBe(0);
    expect(await runCode(client, "w + 1")).toContain("2");
    const read = CallToolResultSchema.parse(await client.callTool({ name: "read_file", arguments: { path: "kept.txt" } }));
    expect(textOf(read)).toContain("across the restart");
    expect(transport.sessionId).toBe(mcpSession);
    // The client's capabilities came along (its initialize was replayed): input() still asks it through elicitation.
    expect(await runCode(client, "name = input('name? ')\nprint('hi', name)")).toContain("hi Ada");
    expect(asked).toEqual([expect.stringContaining("name?")]);
    expect((await ofMcpSession(mcpSession)).map((session) => session.id)).toEqual([tetherSession!.id]);
    const holder = await mcpHolder(mcpSession);
    expect(holder).toBeDefined();
    expect(holder).not.toBe(owner);
    expect(await runCode(idle.client, "'idle one works'")).toContain("idle one works");
    if (idleOwner === owner) expect(await mcpHolder(idle.transport.sessionId ?? "")).not.toBe(owner);

    await Promise.all([transport.terminateSession(), idle.transport.terminateSession()]);
    await Promise.all([client.close(), idle.client.close()]);
    await cluster.restart(owner);
  });

  it("an MCP holder presumed dead (frozen past its TTL) that comes back lets the session go: its client reaches the new holder, variables and Tether session kept", { timeout: 240_000 }, async () => {
    const [, stale, other] = cluster.replicas;
    // Pinned to the holder, as a client behind a sticky proxy would be.
    const { client, transport } = await mcpClient(stale!.url);
    const mcpSession = transport.sessionId ?? "";
    expect(await runCode(client, "z = 41\nz")).toContain("41");
    const [tetherSession] = await ofMcpSession(mcpSession);
    expect(await mcpHolder(mcpSession)).toBe(stale);
    stale!.process.kill("SIGSTOP");
    try {
      // Once its key lapsed (a request forwarded to a frozen process would wait for it), another replica takes the session over on the next request.
      const deadline = Date.now() + 60_000;
      while ((await redis.exists(`tether:replica:${stale!.replicaId}`)) === 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        const answer = await rawMcpPost(other!.url, KEYS.alice, { jsonrpc: "2.0", id: 4, method: "tools/list" }, { sessionId: mcpSession });
        status = answer.status;
        await answer.text();
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(status).toBe(200);
      expect(await mcpHolder(mcpSession)).toBe(other);
    } finally {
      stale!.process.kill("SIGCONT");
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // Back: every call through the stale replica now reaches the session where it lives, with its variables.
    for (let i = 0; i < 3; i++) expect(await runCode(client, "z + 1")).toContain("42");
    expect((await ofMcpSession(mcpSession)).map((session) => session.id)).toEqual([tetherSession!.id]);
    expect(await mcpHolder(mcpSession)).toBe(other);
    await transport.terminateSession();
    await client.close();
  });

  it("dynamic sessions: an identifier the routes refuse (over 128 characters) is answered 400 and leaves nothing in Redis; a bound identifier has no expiry", { timeout: 60_000 }, async () => {
    const [first] = cluster.replicas.map((replica) => cluster.direct(replica));
    const long = "x".repeat(3000);
    const refused = await replay(first!, "POST", `code/execute?identifier=${long}&api-version=2024-02-02-preview`, { json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "1" } }) });
    expect(refused.status).toBe(400);
    expect(await redis.keys(`*${long.slice(0, 200)}*`)).toEqual([]);
    // A fresh identifier: bound to its session once created, with no expiry then.
    const identifier = randomUUID();
    const ok = await replay(first!, "POST", `code/execute?identifier=${identifier}&api-version=2024-02-02-preview`, { json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code: "1" } }) });
    expect(ok.status).toBe(200);
    const [key] = await redis.keys(`*ds:*${identifier}`);
    expect(key).toBeDefined();
    expect(await redis.pttl(key!)).toBe(-1);
  });

  it("dynamic sessions: concurrent first requests on two replicas make one session; execute, read and upload through different replicas", { timeout: 240_000 }, async () => {
    const [first, second, third] = cluster.replicas.map((replica) => cluster.direct(replica));
    const identifier = randomUUID();
    const query = `identifier=${identifier}&api-version=2024-02-02-preview`;
    const execute = (client: typeof first, code: string) =>
      replay(client!, "POST", `code/execute?${query}`, { json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code } }) });

    const [a, b] = await Promise.all([execute(first, "a = 1"), execute(second, "b = 2")]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const sum = await execute(third, "a + b");
    expect(field(sum.json(), "properties", "result")).toBe(3);
    const sessions = (await cluster.alice.listSessions()).sessions.filter((session) => session.metadata.identifier === identifier);
    expect(sessions).toHaveLength(1);

    // Execute through the first, read it back through the second, upload through the third.
    expect((await execute(first, "open('made.txt', 'w').write('from code')")).status).toBe(200);
    const read = await replay(second!, "GET", `files/content/made.txt?${query}`);
    expect(read.status).toBe(200);
    expect(read.text()).toBe("from code");
    const boundary = "b0undary4cluster";
    const uploaded = await replay(third!, "POST", `files/upload?${query}`, {
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, { filename: "up.txt", data: "uploaded" }),
    });
    expect(uploaded.status).toBe(200);
    expect(field(await execute(first, "open('up.txt').read()").then((r) => r.json()), "properties", "result")).toBe("uploaded");
    const metadata = await replay(second!, "GET", `session?identifier=${identifier}&api-version=2025-02-02-preview`);
    expect(metadata.status).toBe(200);
    expect(field(metadata.json(), "identifier")).toBe(identifier);

    // DELETE through any replica deletes the one session; the identifier then starts afresh.
    expect((await replay(third!, "DELETE", `session?${query}`)).status).toBe(204);
    expect((await cluster.alice.listSessions()).sessions.filter((session) => session.metadata.identifier === identifier)).toHaveLength(0);
    expect((await replay(first!, "GET", `session?${query}`)).status).toBe(404);
  });

  it("dynamic sessions: an identifier keeps its session (and variables) when the replica serving it dies", { timeout: 240_000 }, async () => {
    const identifier = randomUUID();
    const query = `identifier=${identifier}&api-version=2024-02-02-preview`;
    const body = (code: string) => ({ json: JSON.stringify({ properties: { codeInputType: "inline", executionType: "synchronous", code } }) });
    expect((await replay(cluster.alice, "POST", `code/execute?${query}`, body("k = 5"))).status).toBe(200);
    const [session] = (await cluster.alice.listSessions()).sessions.filter((candidate) => candidate.metadata.identifier === identifier);
    const owner = (await cluster.ownerOf(session!.id))!;
    const survivor = cluster.replicas.find((replica) => replica !== owner)!;
    await cluster.kill(owner);

    // 503 with Retry-After until the survivors notice; then the session is taken over, not replaced.
    const deadline = Date.now() + 90_000;
    let answer = await replay(cluster.direct(survivor), "POST", `code/execute?${query}`, body("k + 1"));
    while (answer.status === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      answer = await replay(cluster.direct(survivor), "POST", `code/execute?${query}`, body("k + 1"));
    }
    expect(answer.status).toBe(200);
    expect(field(answer.json(), "properties", "result")).toBe(6);
    expect((await cluster.alice.listSessions()).sessions.filter((candidate) => candidate.metadata.identifier === identifier).map((s) => s.id)).toEqual([session!.id]);
    expect((await replay(cluster.alice, "DELETE", `session?${query}`)).status).toBe(204);
    await cluster.restart(owner);
  });
});
