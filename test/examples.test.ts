import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOrchestrator, type TestOrchestrator } from "./helpers/orchestrator.js";

/** The examples are plain .mjs for copy-paste: loaded by path (no types), as a user would run them. */
const exampleUrl = (path: string): string => new URL(`../examples/${path}`, import.meta.url).href;

interface ExampleTool {
  run(args: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
  sessionId: string | undefined;
}
interface ExampleModules {
  TetherTool: new (options: { url: string; key: string }) => ExampleTool;
  openAiTool: { type: string; function: { name: string; parameters: { required: string[] } } };
  anthropicTool: { name: string; input_schema: { required: string[] } };
  runOpenAiStyle(options: { model: (body: unknown) => Promise<unknown>; tether: ExampleTool; prompt: string }): Promise<{ answer: string }>;
  runAnthropicStyle(options: { model: (body: unknown) => Promise<unknown>; tether: ExampleTool; prompt: string }): Promise<{ answer: string }>;
}

async function loadExamples(): Promise<ExampleModules> {
  const tool: unknown = await import(exampleUrl("agent-loop/tether-tool.mjs"));
  const loop: unknown = await import(exampleUrl("agent-loop/agent-loop.mjs"));
  return Object.assign({}, tool, loop) as ExampleModules;
}

/** A scripted model: each turn checks what it was sent and answers the next scripted reply. */
function scriptedModel(turns: ((body: { messages: unknown[] }) => unknown)[]): { model: (body: unknown) => Promise<unknown>; bodies: unknown[] } {
  const bodies: unknown[] = [];
  return {
    bodies,
    model: async (body) => {
      bodies.push(structuredClone(body));
      const turn = turns.shift();
      if (!turn) throw new Error("the model was asked more often than scripted");
      return turn(body as { messages: unknown[] });
    },
  };
}

describe("examples/agent-loop with a scripted model (no network)", () => {
  let orchestrator: TestOrchestrator;
  let examples: ExampleModules;

  beforeAll(async () => {
    orchestrator = await startTestOrchestrator();
    examples = await loadExamples();
  });

  afterAll(async () => {
    await orchestrator?.close();
  });

  it("OpenAI style: the model calls execute_python, reads the output, answers; the session is deleted at the end", async () => {
    expect(examples.openAiTool.function.name).toBe("execute_python");
    expect(examples.openAiTool.function.parameters.required).toEqual(["code"]);
    const tether = new examples.TetherTool({ url: orchestrator.url, key: orchestrator.keys.alice });
    const { model, bodies } = scriptedModel([
      () => ({ choices: [{ message: { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "execute_python", arguments: JSON.stringify({ code: "a, b = 0, 1\nfor _ in range(30):\n    a, b = b, a + b\nprint(a)" }) } }] } }] }),
      (body) => {
        const last = body.messages.at(-1) as { role: string; tool_call_id: string; content: string };
        expect(last).toMatchObject({ role: "tool", tool_call_id: "call_1" });
        return { choices: [{ message: { role: "assistant", content: `The 30th Fibonacci number is ${last.content.trim()}.` } }] };
      },
    ]);
    const { answer } = await examples.runOpenAiStyle({ model, tether, prompt: "30th Fibonacci?" });
    expect(answer).toBe("The 30th Fibonacci number is 832040.");
    expect(bodies).toHaveLength(2);
    expect((await orchestrator.alice.listSessions()).sessions).toHaveLength(1);
    await tether.close();
    expect((await orchestrator.alice.listSessions()).sessions).toHaveLength(0);
  });

  it("Anthropic style: a wrong call comes back with Tether's hint, the model fixes it, variables persist between calls", async () => {
    expect(examples.anthropicTool.input_schema.required).toEqual(["code"]);
    const tether = new examples.TetherTool({ url: orchestrator.url, key: orchestrator.keys.alice });
    const toolResult = (body: { messages: unknown[] }): string => {
      const last = body.messages.at(-1) as { content: { type: string; content: string }[] };
      return last.content[0]?.content ?? "";
    };
    const { model } = scriptedModel([
      () => ({ stop_reason: "tool_use", content: [{ type: "tool_use", id: "t1", name: "execute_python", input: { code: "total = sum(range(101))", timeout: 5000 } }] }),
      (body) => {
        expect(toolResult(body)).toContain("Did you mean `timeoutMs`?");
        return { stop_reason: "tool_use", content: [{ type: "tool_use", id: "t2", name: "execute_python", input: { code: "total = sum(range(101))", timeoutMs: 5000 } }] };
      },
      () => ({ stop_reason: "tool_use", content: [{ type: "tool_use", id: "t3", name: "execute_python", input: { code: "total" } }] }),
      (body) => ({ stop_reason: "end_turn", content: [{ type: "text", text: `It is ${toolResult(body).replace("Result: ", "").trim()}.` }] }),
    ]);
    try {
      const { answer } = await examples.runAnthropicStyle({ model, tether, prompt: "Sum 0..100 with Python." });
      expect(answer).toBe("It is 5050.");
    } finally {
      await tether.close();
    }
  });
});

describe("examples/mcp", () => {
  it("the Claude Desktop config runs the stdio entry with the orchestrator URL and key file", async () => {
    const config = JSON.parse(await readFile(fileURLToPath(exampleUrl("mcp/claude_desktop_config.json")), "utf8")) as {
      mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }>;
    };
    const server = config.mcpServers.tether;
    expect(server?.command).toBe("node");
    expect(server?.args[0]).toMatch(/orchestrator\/dist\/mcp-stdio\.js$/);
    expect(Object.keys(server?.env ?? {}).sort()).toEqual(["TETHER_API_KEY_FILE", "TETHER_URL"]);
  });
});
