import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CallToolResultSchema, ElicitRequestSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ObservedArray } from "./helpers/signals.js";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";
import { textOf } from "./helpers/mcp.js";

/** The stdio entry point desktop clients launch (`tether-mcp`), built by `npm run build`. */
const STDIO_ENTRY = fileURLToPath(new URL("../orchestrator/dist/mcp-stdio.js", import.meta.url));

interface StdioConnection {
  client: Client;
  transport: StdioClientTransport;
  call(args: Record<string, unknown>, options?: { onprogress?: (p: { progress: number; message?: string }) => void; signal?: AbortSignal }): Promise<CallToolResult>;
}

async function spawnStdio(orchestrator: TestOrchestrator, options: { elicit?: boolean } = {}): Promise<StdioConnection> {
  const client = new Client({ name: "desktop-like", version: "1.0.0" }, { capabilities: options.elicit ? { elicitation: {} } : {} });
  if (options.elicit) client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { value: "from the desktop" } }));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [STDIO_ENTRY],
    env: { PATH: process.env.PATH ?? "", TETHER_URL: orchestrator.url, TETHER_API_KEY: orchestrator.keys.alice },
    stderr: "pipe",
  });
  await client.connect(transport);
  return {
    client,
    transport,
    call: async (args, callOptions = {}) =>
      CallToolResultSchema.parse(
        await client.callTool({ name: "run_code", arguments: args }, CallToolResultSchema, {
          timeout: 120_000,
          ...(callOptions.onprogress ? { onprogress: callOptions.onprogress } : {}),
          ...(callOptions.signal ? { signal: callOptions.signal } : {}),
        }),
      ),
  };
}

function exited(pid: number | null): boolean {
  if (pid === null) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

describe("MCP over stdio (tether-mcp proxying to /mcp)", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("forwards tools, progress, elicitation and cancellation, and deletes its Tether session when stdin ends", async () => {
    const stdio = await spawnStdio(orchestrator, { elicit: true });
    const pid = stdio.transport.pid;
    const { tools } = await stdio.client.listTools();
    expect(tools.map((tool) => tool.name)).toContain("run_code");

    const progress = new ObservedArray<{ progress: number; message?: string }>();
    const printed = stdio.call({ code: "import time\nfor i in range(3):\n    print('step', i, flush=True)\n    time.sleep(0.4)\nanswer = input('who? ')\nprint('answer:', answer)" }, { onprogress: (p) => progress.push(p) });
    await progress.until((items) => items.some((p) => p.message?.includes("step 0")), 30_000, "progress through the proxy");
    const result = await printed;
    expect(textOf(result)).toContain("answer: from the desktop");

    const cancel = new AbortController();
    const loopProgress = new ObservedArray<{ progress: number; message?: string }>();
    const looping = stdio.call({ code: "print('loop', flush=True)\nwhile True:\n    pass" }, { onprogress: (p) => loopProgress.push(p), signal: cancel.signal });
    await loopProgress.until((items) => items.length > 0, 20_000, "the loop to start");
    const cancelledAt = Date.now();
    cancel.abort("stop");
    await expect(looping).rejects.toThrow();
    expect(textOf(await stdio.call({ code: "print(answer)" }))).toContain("from the desktop");
    // Without the interrupt the loop would run to the 60 s default timeout; 10 s leaves room for a loaded machine.
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);

    expect((await orchestrator.alice.listSessions()).sessions.filter((s) => s.metadata.client === "mcp")).toHaveLength(1);
    await stdio.client.close();
    // The proxy ends its upstream session (DELETE, answered once the Tether session is gone), then exits.
    expect(exited(pid ?? null)).toBe(true);
    expect((await orchestrator.alice.listSessions()).sessions.filter((s) => s.metadata.client === "mcp")).toEqual([]);
  });

  it("fails input() naming `stdin` when the desktop client cannot be asked", async () => {
    const stdio = await spawnStdio(orchestrator);
    try {
      const failed = await stdio.call({ code: "input('x? ')" });
      expect(failed.isError).toBe(true);
      expect(textOf(failed)).toContain("`stdin` argument");
    } finally {
      await stdio.client.close();
    }
  });

  it("exits with a usage line when it has no API key", async () => {
    const child = spawn(process.execPath, [STDIO_ENTRY], { env: { PATH: process.env.PATH ?? "" }, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(stderr).toContain("TETHER_API_KEY");
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("tether-mcp after the orchestrator forgot its MCP session", () => {
  let orchestrator: TestOrchestrator;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator({ TETHER_MCP_IDLE_TIMEOUT_S: "1" });
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("opens a new upstream session on a 404 and says that earlier state is gone", async () => {
    const stdio = await spawnStdio(orchestrator);
    try {
      await stdio.call({ code: "x = 1" });
      const deadline = Date.now() + 15_000;
      while ((await orchestrator.alice.listSessions()).sessions.length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await orchestrator.alice.listSessions()).sessions).toEqual([]);
      const after = await stdio.call({ code: "print('new session')" });
      expect(textOf(after)).toContain("new session");
      expect(textOf(after)).toContain("re-established");
    } finally {
      await stdio.client.close();
    }
  });
});
