import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { ObservedArray } from "./helpers/signals.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { connectMcp, errorCodeOf, rawMcpPost, textOf, type McpConnection } from "./helpers/mcp.js";

/**
 * The MCP server at /mcp, driven by the SDK's own Client over Streamable
 * HTTP, through a real orchestrator, real workers and real kernels.
 */
describe("MCP over Streamable HTTP", () => {
  let orchestrator: TestOrchestrator;
  const open: McpConnection[] = [];

  async function connect(options: Parameters<typeof connectMcp>[2] = {}): Promise<McpConnection> {
    const connection = await connectMcp(orchestrator.url, orchestrator.keys.alice, options);
    open.push(connection);
    return connection;
  }

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
  });

  afterAll(async () => {
    await Promise.allSettled(open.map((connection) => connection.close()));
    await orchestrator?.close();
  });

  it("refuses a request without an API key (401) and a browser Origin that is not the orchestrator's (403)", async () => {
    const initialize = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } };
    const noKey = await rawMcpPost(orchestrator.url, undefined, initialize);
    expect(noKey.status).toBe(401);
    expect(await errorCodeOf(noKey)).toBe("TETHER_ERR_AUTH_MISSING");
    const foreign = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, initialize, { origin: "http://evil.example:8080" });
    expect(foreign.status).toBe(403);
    expect(await errorCodeOf(foreign)).toBe("TETHER_ERR_REQUEST_ORIGIN_NOT_ALLOWED");
    const own = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, initialize, { origin: orchestrator.url });
    expect(own.status).toBe(200);
    const sessionId = own.headers.get("mcp-session-id");
    expect(sessionId).toMatch(/^mcp_/);
    await rawMcpPost(orchestrator.url, orchestrator.keys.alice, undefined, { method: "DELETE", sessionId: sessionId ?? "" });
  });

  it("lists the tools with descriptions that tell a model what persists, where files live and how plots come back", async () => {
    const mcp = await connect();
    const { tools } = await mcp.client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(["list_files", "read_file", "restart_kernel", "run_code", "write_file"]);
    const runCode = tools.find((tool) => tool.name === "run_code");
    expect(runCode?.description).toMatch(/persist/);
    expect(runCode?.description).toContain("/mnt/data");
    expect(runCode?.description).toContain("plt.show()");
    expect(runCode?.description).toContain("stdin");
    expect(Object.keys(runCode?.inputSchema.properties ?? {}).sort()).toEqual(["code", "stdin", "timeoutMs"]);
    expect(mcp.client.getInstructions()).toContain("persistent");
  });

  it("keeps variables between calls, returns a plot as image content and an exception as isError with a plain traceback", async () => {
    const mcp = await connect();
    const first = await mcp.call("run_code", { code: "x = 6 * 7\nprint('set', x)" });
    expect(first.isError).toBeUndefined();
    expect(textOf(first)).toContain("set 42");
    const second = await mcp.call("run_code", { code: "x + 1" });
    expect(textOf(second)).toContain("43");

    const plot = await mcp.call("run_code", { code: "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()" });
    const image = plot.content.find((block) => block.type === "image");
    expect(image?.type === "image" ? image.mimeType : undefined).toBe("image/png");
    expect(image?.type === "image" ? Buffer.from(image.data, "base64").subarray(1, 4).toString("latin1") : undefined).toBe("PNG");

    const failed = await mcp.call("run_code", { code: "def f():\n    return 1 / 0\nf()" });
    expect(failed.isError).toBe(true);
    const traceback = textOf(failed);
    expect(traceback).toContain("ZeroDivisionError");
    expect(traceback).toContain("return 1 / 0");
    expect(traceback).not.toContain("\u001b[");

    const frame = await mcp.call("run_code", { code: "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})" });
    expect(textOf(frame)).toMatch(/a\s+b\n0\s+1\s+3\n1\s+2\s+4/);
    expect(textOf(frame)).not.toContain("<table");
  });

  it("writes, reads and lists workspace files (also under /mnt/data/), and the code sees them", async () => {
    const mcp = await connect();
    const written = await mcp.call("write_file", { path: "/mnt/data/data/input.csv", content: "a,b\n1,2\n" });
    expect(textOf(written)).toContain("Wrote 8 bytes to data/input.csv");
    await mcp.call("write_file", { path: "blob.bin", content: Buffer.from([0, 1, 2, 255]).toString("base64"), encoding: "base64" });
    const ran = await mcp.call("run_code", { code: "import pandas as pd\nd = pd.read_csv('data/input.csv')\nd.assign(c=d.a + d.b).to_csv('out.csv', index=False)" });
    expect(ran.isError).toBeUndefined();

    const listing = textOf(await mcp.call("list_files", {}));
    expect(listing).toContain("data/input.csv\t8 bytes");
    expect(listing).toContain("out.csv");
    expect(listing).toContain("blob.bin\t4 bytes");
    expect(textOf(await mcp.call("list_files", { path: "/mnt/data/data" }))).not.toContain("out.csv");

    expect(textOf(await mcp.call("read_file", { path: "out.csv" }))).toBe("a,b,c\n1,2,3\n");
    const binary = await mcp.call("read_file", { path: "/mnt/data/blob.bin" });
    const resource = binary.content.find((block) => block.type === "resource");
    expect(resource?.type === "resource" && "blob" in resource.resource ? Buffer.from(resource.resource.blob, "base64") : undefined).toEqual(Buffer.from([0, 1, 2, 255]));
    const missing = await mcp.call("read_file", { path: "nope.txt" });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toContain("TETHER_ERR_FILE_NOT_FOUND");
    const escaping = await mcp.call("read_file", { path: "../etc/passwd" });
    expect(escaping.isError).toBe(true);
    expect(textOf(escaping)).toContain("TETHER_ERR_PATH_ESCAPES_WORKSPACE");
  });

  it("streams output as progress notifications while a slow print loop runs", async () => {
    const mcp = await connect();
    const progress = new ObservedArray<{ progress: number; message?: string }>();
    const result = mcp.call("run_code", { code: "import time\nfor i in range(4):\n    print('tick', i, flush=True)\n    time.sleep(0.4)" }, { onprogress: (p) => progress.push(p) });
    // The first tick arrives while the loop still sleeps: it is streamed, not folded at the end.
    await progress.until((items) => items.some((p) => p.message?.includes("tick 0")), 20_000, "the first tick as progress");
    expect(progress.some((p) => p.message?.includes("tick 3"))).toBe(false);
    const done = await result;
    expect(textOf(done)).toContain("tick 3");
    expect(progress.map((p) => p.message ?? "").join("")).toContain("tick 3");
    expect(progress.map((p) => p.progress)).toEqual(progress.map((_, index) => index + 1));
  });

  it("interrupts a while-True loop quickly when the client cancels the call, and the kernel keeps its variables", async () => {
    const mcp = await connect();
    await mcp.call("run_code", { code: "kept = 'still here'" });
    const progress = new ObservedArray<{ progress: number; message?: string }>();
    const cancel = new AbortController();
    const looping = mcp.call("run_code", { code: "print('looping', flush=True)\nwhile True:\n    pass" }, { onprogress: (p) => progress.push(p), signal: cancel.signal });
    await progress.until((items) => items.some((p) => p.message?.includes("looping")), 20_000, "the loop to start");
    const cancelledAt = Date.now();
    cancel.abort("the user pressed stop");
    await expect(looping).rejects.toThrow();
    const after = await mcp.call("run_code", { code: "print(kept)" });
    expect(textOf(after)).toContain("still here");
    // Without the interrupt the loop would run to the 60 s default timeout; 10 s leaves room for a loaded machine.
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
  });

  it("does not cancel when the HTTP connection drops: the execution runs to its end", async () => {
    const mcp = await connect();
    const sessionId = mcp.transport.sessionId ?? "";
    const dropped = new AbortController();
    const call = { jsonrpc: "2.0", id: 9001, method: "tools/call", params: { name: "run_code", arguments: { code: "import time\ntime.sleep(1.5)\nsurvivor = 'finished'" } } };
    const response = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, call, { sessionId, signal: dropped.signal });
    expect(response.status).toBe(200);
    dropped.abort();
    // Queued behind the dropped call: it sees what that call set, so that call was not interrupted.
    const after = await mcp.call("run_code", { code: "print(survivor)" });
    expect(after.isError).toBeUndefined();
    expect(textOf(after)).toContain("finished");
  });

  it("asks the user through elicitation to answer input(), and a declined prompt interrupts the code", async () => {
    const answers: ElicitResult[] = [{ action: "accept", content: { value: "Ada" } }, { action: "decline" }];
    const asked: string[] = [];
    const mcp = await connect({
      elicit: async (request) => {
        asked.push(request.params.message);
        return answers.shift() ?? { action: "cancel" };
      },
    });
    const answered = await mcp.call("run_code", { code: "name = input('name? ')\nprint('hi', name)" });
    expect(textOf(answered)).toContain("hi Ada");
    expect(asked[0]).toContain("name?");

    const declinedAt = Date.now();
    const declined = await mcp.call("run_code", { code: "age = input('age? ')\nprint('unreach' + 'able')", timeoutMs: 60_000 });
    expect(declined.isError).toBe(true);
    expect(textOf(declined)).toContain("did not answer");
    expect(textOf(declined)).toContain("KeyboardInterrupt");
    expect(textOf(declined)).not.toContain("unreachable");
    expect(Date.now() - declinedAt).toBeLessThan(10_000);
  });

  it("fails input() at once naming `stdin` when the client cannot be asked, and answers it from stdin lines", async () => {
    const mcp = await connect();
    // The first call starts the session (a kernel start); time only the execution.
    await mcp.call("run_code", { code: "1" });
    const startedAt = Date.now();
    const failed = await mcp.call("run_code", { code: "input('anyone? ')", timeoutMs: 60_000 });
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toContain("`stdin` argument");
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    const answered = await mcp.call("run_code", { code: "a = input('a? ')\nb = input('b? ')\nprint(b, a)", stdin: ["1", "2"] });
    expect(textOf(answered)).toContain("2 1");
  });

  it("answers an unknown MCP session id with 404 and JSON-RPC -32001 (also another tenant's id)", async () => {
    const list = { jsonrpc: "2.0", id: 2, method: "tools/list" };
    const unknown = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, list, { sessionId: "mcp_doesnotexist" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null });
    const mcp = await connect();
    const bobs = await rawMcpPost(orchestrator.url, orchestrator.keys.bob, list, { sessionId: mcp.transport.sessionId ?? "" });
    expect(bobs.status).toBe(404);
  });

  it("refuses an initialize whose params are too large to keep (400, nothing opened), and the next normal one works", async () => {
    const huge = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: { experimental: { padding: { text: "x".repeat(20_000) } } }, clientInfo: { name: "big", version: "1" } } };
    const refused = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, huge);
    expect(refused.status).toBe(400);
    expect(refused.headers.get("mcp-session-id")).toBeNull();
    const refusal = JSON.stringify(await refused.json());
    expect(refusal, refusal).toContain("too large");
    const mcp = await connect();
    expect(textOf(await mcp.call("run_code", { code: "print('fine')" }))).toContain("fine");
  });

  it("deletes the MCP session's Tether session on DELETE, and the old id then answers 404", async () => {
    const mcp = await connectMcp(orchestrator.url, orchestrator.keys.alice);
    await mcp.call("run_code", { code: "1" });
    const sessionId = mcp.transport.sessionId ?? "";
    const owned = (await orchestrator.alice.listSessions()).sessions.filter((session) => session.metadata.mcpSession === sessionId);
    expect(owned).toHaveLength(1);
    await mcp.transport.terminateSession();
    const after = (await orchestrator.alice.listSessions()).sessions.filter((session) => session.metadata.mcpSession === sessionId);
    expect(after).toEqual([]);
    const gone = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, { jsonrpc: "2.0", id: 3, method: "tools/list" }, { sessionId });
    expect(gone.status).toBe(404);
    await mcp.close();
  });
});

describe("MCP sessions idle out", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_MCP_IDLE_TIMEOUT_S: "1" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("closes an MCP session idle for TETHER_MCP_IDLE_TIMEOUT_S and deletes its Tether session, but never under a running call", async () => {
    const mcp = await connectMcp(orchestrator.url, orchestrator.keys.alice);
    // Runs past the idle timeout: an in-flight call keeps the session.
    const long = await mcp.call("run_code", { code: "import time\ntime.sleep(2.5)\nprint('long call done')" });
    expect(textOf(long)).toContain("long call done");
    const sessionId = mcp.transport.sessionId ?? "";
    const deadline = Date.now() + 15_000;
    let held = 1;
    while (held > 0 && Date.now() < deadline) {
      held = (await orchestrator.alice.listSessions()).sessions.length;
      if (held > 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(held).toBe(0);
    const gone = await rawMcpPost(orchestrator.url, orchestrator.keys.alice, { jsonrpc: "2.0", id: 4, method: "tools/list" }, { sessionId });
    expect(gone.status).toBe(404);
    await mcp.close();
  });
});
