// A minimal agent loop around Tether's execute tool, in the two common tool-calling formats.
// `model(body)` is whatever answers a chat request: a fetch to the provider (see main() below)
// or, in tests, a scripted fake. The loop sends the conversation, runs the tool calls the model
// asks for, appends their results, and stops at the first answer without tool calls.
//
//   TETHER_URL=http://127.0.0.1:8080 TETHER_API_KEY=$(cat .tether/api-key) OPENAI_API_KEY=... \
//     node examples/agent-loop/agent-loop.mjs "What is the 30th Fibonacci number? Compute it."
import { TetherTool, anthropicTool, openAiTool } from "./tether-tool.mjs";

/** OpenAI Chat Completions format: assistant `tool_calls`, then one `role: "tool"` message per call. */
export async function runOpenAiStyle({ model, tether, prompt, modelName = "gpt-4.1-mini", maxTurns = 8 }) {
  const messages = [
    { role: "system", content: "You can run Python with the execute_python tool. Use it to compute answers." },
    { role: "user", content: prompt },
  ];
  for (let turn = 0; turn < maxTurns; turn += 1) {
    const reply = await model({ model: modelName, messages, tools: [openAiTool] });
    const message = reply.choices[0].message;
    messages.push(message);
    if (!message.tool_calls?.length) return { answer: message.content, messages };
    for (const call of message.tool_calls) {
      const output = await tether.run(JSON.parse(call.function.arguments));
      messages.push({ role: "tool", tool_call_id: call.id, content: output });
    }
  }
  throw new Error(`no answer after ${maxTurns} turns`);
}

/** Anthropic Messages format: `tool_use` content blocks, answered by `tool_result` blocks in a user turn. */
export async function runAnthropicStyle({ model, tether, prompt, modelName = "claude-sonnet-4-5", maxTurns = 8 }) {
  const messages = [{ role: "user", content: prompt }];
  for (let turn = 0; turn < maxTurns; turn += 1) {
    const reply = await model({ model: modelName, max_tokens: 2048, system: "You can run Python with the execute_python tool.", messages, tools: [anthropicTool] });
    messages.push({ role: "assistant", content: reply.content });
    const calls = reply.content.filter((block) => block.type === "tool_use");
    if (reply.stop_reason !== "tool_use" || calls.length === 0) {
      return { answer: reply.content.filter((block) => block.type === "text").map((block) => block.text).join(""), messages };
    }
    const results = [];
    for (const call of calls) results.push({ type: "tool_result", tool_use_id: call.id, content: await tether.run(call.input) });
    messages.push({ role: "user", content: results });
  }
  throw new Error(`no answer after ${maxTurns} turns`);
}

/** The real thing: OpenAI (OPENAI_API_KEY) or Anthropic (ANTHROPIC_API_KEY) over fetch. Not run by the tests (no network there). */
async function main() {
  const prompt = process.argv.slice(2).join(" ") || "Compute the 30th Fibonacci number with Python.";
  const tether = new TetherTool({ url: process.env.TETHER_URL ?? "http://127.0.0.1:8080", key: process.env.TETHER_API_KEY });
  try {
    if (process.env.ANTHROPIC_API_KEY) {
      const model = async (body) =>
        (await fetch("https://api.anthropic.com/v1/messages", {
          method: "POST",
          headers: { "x-api-key": process.env.ANTHROPIC_API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
          body: JSON.stringify(body),
        })).json();
      console.log((await runAnthropicStyle({ model, tether, prompt })).answer);
    } else {
      const model = async (body) =>
        (await fetch("https://api.openai.com/v1/chat/completions", {
          method: "POST",
          headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        })).json();
      console.log((await runOpenAiStyle({ model, tether, prompt })).answer);
    }
  } finally {
    await tether.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
